#!/bin/sh
# exports.sh LIB - the shared library exports the public API and nothing
# else: every dynamic symbol it defines starts with ql_ (internal qli_
# functions are hidden: no namespace clash for the embedding program, and
# calls inside the library skip the PLT). Also checks that the API is
# there at all (ql_open, ql_append, ql_cursor_open).
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }')
bad=$(printf '%s\n' "$syms" | grep -v '^ql_' || true)
if [ -n "$bad" ]; then
	echo "exports.sh: $lib exports symbols outside the ql_ API:" >&2
	printf '%s\n' "$bad" | head -20 >&2
	exit 1
fi
for s in ql_open ql_append ql_cursor_open ql_close; do
	printf '%s\n' "$syms" | grep -qx "$s" || {
		echo "exports.sh: $lib does not export $s" >&2
		exit 1
	}
done
echo "exports.sh: $(printf '%s\n' "$syms" | wc -l) symbols, all ql_"
