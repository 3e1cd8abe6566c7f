#!/usr/bin/env python3
# tools/oci_archive.py: pack an OCI image layout (made by umoci in scripts/image) into one
# archive that both `podman load` (oci-archive) and `docker load` read.
#
#   oci_archive.py LAYOUT_DIR TAG NAME:TAG OUT.tar
#
# Why: an OCI layout tarred as is is an oci-archive; Docker 25+ loads such an archive when the
# index names the image (annotation io.containerd.image.name), and older Docker only reads its
# own `manifest.json` (Config, RepoTags, Layers as paths inside the archive). `docker save`
# has written both side by side since Docker 25; this does the same, pointing manifest.json at
# the same blobs, so the archive carries every blob once.
# How: read index.json, pick the manifest tagged TAG (org.opencontainers.image.ref.name), add
# the name annotation, write manifest.json, and tar the layout with fixed owners and times.
import io
import json
import os
import sys
import tarfile

REF = "org.opencontainers.image.ref.name"
NAME = "io.containerd.image.name"


def blob_path(digest):
    algo, hexd = digest.split(":", 1)
    return "blobs/%s/%s" % (algo, hexd)


def main(layout, tag, name, out):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    tagged = [m for m in index["manifests"] if m.get("annotations", {}).get(REF) == tag]
    if len(tagged) != 1:
        sys.exit("oci_archive: %d manifests tagged %s in %s" % (len(tagged), tag, layout))
    desc = tagged[0]
    desc["annotations"][NAME] = name
    index["manifests"] = [desc]
    with open(os.path.join(layout, blob_path(desc["digest"]))) as f:
        manifest = json.load(f)
    docker = [{"Config": blob_path(manifest["config"]["digest"]), "RepoTags": [name],
               "Layers": [blob_path(layer["digest"]) for layer in manifest["layers"]]}]
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))

    def add_bytes(tar, path, data):
        info = tarfile.TarInfo(path)
        info.size, info.mtime, info.mode = len(data), mtime, 0o644
        tar.addfile(info, io.BytesIO(data))

    def fixed(info):
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = mtime
        return info

    with tarfile.open(out + ".new", "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(os.path.join(layout, "oci-layout"), "oci-layout", filter=fixed)
        for d in ("blobs", "blobs/sha256"):
            tar.add(os.path.join(layout, d), d, recursive=False, filter=fixed)
        add_bytes(tar, "index.json", json.dumps(index).encode())
        add_bytes(tar, "manifest.json", json.dumps(docker).encode())
        for digest in [desc["digest"], manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]:
            tar.add(os.path.join(layout, blob_path(digest)), blob_path(digest), filter=fixed)
    os.replace(out + ".new", out)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: oci_archive.py LAYOUT_DIR TAG NAME:TAG OUT.tar")
    main(*sys.argv[1:])
