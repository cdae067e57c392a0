#!/bin/sh
# Runs once per input file: $INPUT_FILE_PATH is the file, $TMP_OUTPUT_DIR collects outputs.
set -eu
name=$(basename "$INPUT_FILE_PATH")
set -- $(wc -l -w -c < "$INPUT_FILE_PATH")
printf '%s: %s\nlines %s\nwords %s\nbytes %s\n' "$REPORT_TITLE" "$name" "$1" "$2" "$3" \
  > "$TMP_OUTPUT_DIR/$name.count"
# Not uploaded: the output filter keeps only *.count files.
echo "scratch" > "$TMP_OUTPUT_DIR/$name.tmp"
echo "counted $name: $2 words"
