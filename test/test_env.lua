-- Prints the env keys the config tests (runtime/tests/config.rs) check: values from the
-- config (numbers, booleans, $VAR substitutions, included files) and the defaults the
-- core writes back when the config leaves them out. One `ENV key=value` line each.
local skynet = require "skynet"
local tester = require "tester"

local KEYS = {
	"thread", "harbor", "bootstrap", "logservice", "profile", "cpath",
	"num_int", "num_float", "flag_on", "flag_off", "text", "subst", "included", "nested_include",
	"overridden", "absent_key",
}

tester.run("test_env", function()
	for _, k in ipairs(KEYS) do
		local v = skynet.getenv(k)
		tester.ok(v == nil or type(v) == "string", "getenv returns strings")
		print(string.format("ENV %s=%s", k, v == nil and "<nil>" or v))
	end
end)
