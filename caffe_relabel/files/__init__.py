"""Files: atomic writes, bounded reads, verified downloads, checksums and where things live.

Nothing here knows about Caffe or images; every other package reads and
writes the user's files through these.
"""
