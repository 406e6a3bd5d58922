#!/bin/sh
# elf_seeds.sh ELF DIR: DIR gets ELF whole and damaged copies of it (its
# header alone, cut in half, cut before the section table at its end, a
# section table offset past the end), for the elfsym entry point.
set -eu
f=$1 d=$2
rm -rf "$d" && mkdir "$d"
n=$(stat -c %s "$f")
cp "$f" "$d/whole"
head -c 64 "$f" > "$d/header"
head -c $((n / 2)) "$f" > "$d/half"
head -c $((n - 100)) "$f" > "$d/no-section-table"
cp "$f" "$d/bad-shoff"
printf '\377\377\377\177' | dd of="$d/bad-shoff" bs=1 seek=40 conv=notrunc 2> /dev/null # e_shoff
