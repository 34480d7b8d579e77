#!/usr/bin/env bash
# tests/fuzz/seeds.sh - seed corpora for the fuzz targets
#
#   tests/fuzz/seeds.sh BIN_DIR OUT_DIR
#
# BIN_DIR holds seedgen (built by run.sh). It formats a scratch dev-dir and
# works on it through the storage core, without FUSE, then copies its log
# files, checkpoints, checkpoint+log pairs, segments and super-chunk images
# into OUT_DIR/<target>/ (tests/fuzz/seedgen.c says which go where). The
# committed text seeds (XML answers, URLs, credentials files, -o strings)
# are copied from tests/fuzz/seeds/<target>/. Seeds from an earlier run
# are replaced.
set -euo pipefail

bin=${1:?usage: seeds.sh BIN_DIR OUT_DIR}
out=${2:?usage: seeds.sh BIN_DIR OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)

mkdir -p "$out"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/zf-seeds.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

for t in frame mlog ckpt records segment sc sc_pack superblock; do
	rm -rf "${out:?}/$t"
done
"$bin/seedgen" "$scratch/dev" "$out"

for d in "$here"/seeds/*/; do
	t=$(basename "$d")
	rm -rf "${out:?}/$t"
	mkdir -p "$out/$t"
	cp "$d"* "$out/$t/"
done

for d in "$out"/*/; do
	printf '%-11s %3d seeds, %7d bytes\n' "$(basename "$d")" "$(ls "$d" | wc -l)" \
		"$(cat "$d"* | wc -c)"
done
