import pytest

from caffe_relabel.netdef.proto.io import parse_net
from caffe_relabel.netdef.prototxt import force_backward

DEPLOY = '''# a comment mentioning force_backward: false
name: "Tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }
'''


def test_adds_field_after_name_and_changes_nothing_else():
    out = force_backward(DEPLOY)
    assert out.replace("force_backward: true\n", "", 1) == DEPLOY
    assert out.splitlines()[2] == "force_backward: true"
    assert parse_net(out).force_backward is True


def test_existing_false_is_flipped_in_place():
    text = 'name: "x"\nforce_backward: false  # keep me\nlayer { name: "d" type: "Input" top: "d" }\n'
    out = force_backward(text)
    assert out == text.replace("false", "true", 1)
    assert parse_net(out).force_backward is True


def test_existing_true_is_untouched():
    text = 'name: "x"\nforce_backward: true\n'
    assert force_backward(text) == text


def test_net_without_name_gets_field_first():
    text = 'layer { name: "d" type: "Input" top: "d" }\n'
    out = force_backward(text)
    assert out == "force_backward: true\n" + text


def test_nested_and_quoted_occurrences_are_ignored():
    text = 'layer { name: "force_backward: false" type: "Input" top: "d" }\nname: "n"\n'
    out = force_backward(text)
    assert 'name: "force_backward: false"' in out
    assert parse_net(out).force_backward is True
    assert out.count("force_backward: true") == 1


def test_name_on_last_line_without_newline():
    out = force_backward('layer { name: "d" type: "Input" top: "d" }\nname: "n"')
    assert parse_net(out).force_backward is True


@pytest.mark.parametrize("name", ["bvlc_googlenet", "bvlc_alexnet", "bvlc_reference_caffenet"])
def test_shipped_prototxts_force_backward(name):
    from caffe_relabel.files.paths import repo_prototxt

    text = repo_prototxt(name).read_text()
    net = parse_net(text)
    assert net.force_backward is True
    assert force_backward(text) == text


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "squeezenet_v1_0", "squeezenet_v1_1", "nin_imagenet",
                                  "mobilenet_v1", "mobilenet_v2", "densenet121", "se_resnet50"])
def test_zoo_architecture_prototxts_force_backward(name):
    from caffe_relabel.files.paths import zoo_prototxt

    text = zoo_prototxt(name).read_text()
    assert parse_net(text).force_backward is True
    assert force_backward(text) == text


@pytest.mark.parametrize("name", ["bvlc_googlenet", "resnet50", "densenet121", "se_resnet50"])
def test_the_layer_count_without_parsing_is_the_parsers(name):
    from caffe_relabel.files.paths import repo_prototxt, zoo_prototxt
    from caffe_relabel.netdef.prototxt import count_layers

    text = (repo_prototxt if name.startswith("bvlc") else zoo_prototxt)(name).read_text()
    net = parse_net(text)
    assert count_layers(text) == len(net.layer) + len(net.layers) > 100


def test_the_layer_count_skips_comments_strings_and_nested_blocks():
    from caffe_relabel.netdef.prototxt import count_layers

    text = ('# layer { a comment }\nname: "layer {"\nlayer { name: "a}" type: "ReLU" }\n'
            'layers < name: "v1" >\ninput_shape { dim: 1 }\nlayer: { name: "c" param { lr_mult: 1 } }\n')
    assert count_layers(text) == 3 == len(parse_net(text).layer) + len(parse_net(text).layers)
