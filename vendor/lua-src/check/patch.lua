-- Checks of the patch (vendor/lua-src/README.md) for the assert build of
-- run-testes.sh: run by check/slua, whose 'loadfile' shares what it loads.

-- Starting at all checks that a state made after its sharing state has
-- parsed finds "global" marked a name (luaX_init asserts it).
assert(load("local global = 1; return global")() == 1)

print("patch checks OK")
