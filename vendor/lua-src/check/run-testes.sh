#!/usr/bin/env bash
# Builds the patched Lua (lua-5.5.1/) as a stand-alone interpreter, check/slua.c, with
# Lua's internal assertions (LUAI_ASSERT), API checks and AddressSanitizer, then runs
#   1. check/patch.lua, our own checks that only an assert build can make;
#   2. check/threads.c, states sharing prototypes and strings across threads, built with
#      ThreadSanitizer;
#   3. Lua's own test suite ("testes", not in this repo) from $LUA_TESTES, when set:
#      all.lua in its portable mode (-e"_U=true": no internal tests, which need ltests.c,
#      no non-portable or long ones, and not main.lua, which tests the stock lua.c).
#      LUA_TESTES_INIT replaces that -e chunk (e.g. "_port=true" adds the long and
#      memory-hungry tests).
# slua runs every loadfile(name)/dofile(name) through a sharing state, so the test files
# themselves run as shared prototypes. CC picks the compiler (default cc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../lua-5.5.1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "run-testes: building slua (LUAI_ASSERT, LUA_USE_APICHECK, -fsanitize=address)"
"${CC:-cc}" -std=gnu99 -O1 -g -fno-omit-frame-pointer -fsanitize=address \
    -DLUAI_ASSERT -DLUA_USE_APICHECK -DLUA_USE_LINUX -Wall -Wextra \
    -I"$src" "$src"/*.c "$here/slua.c" -o "$tmp/slua" -lm -ldl

# Shared prototypes and the sharing state are never freed, by design.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1

echo "run-testes: check/patch.lua"
(cd "$tmp" && ./slua "$here/patch.lua")

echo "run-testes: check/threads.c (-fsanitize=thread)"
"${CC:-cc}" -std=gnu99 -O1 -g -fsanitize=thread -DLUA_USE_LINUX -Wall -Wextra \
    -I"$src" "$src"/*.c "$here/threads.c" -o "$tmp/threads" -lm -ldl -lpthread
TSAN_OPTIONS=halt_on_error=1 "$tmp/threads"

if [ -z "${LUA_TESTES:-}" ]; then
    echo "run-testes: LUA_TESTES is not set (path of Lua 5.5's testes directory): testes skipped"
    exit 0
fi
echo "run-testes: testes in $LUA_TESTES"
cd "$LUA_TESTES"
"$tmp/slua" -e"${LUA_TESTES_INIT:-_U=true}" all.lua
echo "run-testes: testes passed"
