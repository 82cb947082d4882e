-- skynet.memlimit: set while the main chunk runs (before skynet.start's function), it
-- caps the service's Lua heap; an allocation past it raises "not enough memory" (caught
-- or not) and the service keeps running once the garbage is gone.
local skynet = require "skynet"
local tester = require "tester"

local mode = ...

local LIMIT = 4 * 1024 * 1024

if mode == "slave" then
	skynet.memlimit(LIMIT)
	local memlimit_cleared = (skynet.memlimit == nil)

	local function hog()
		local t = {}
		for i = 1, 1000000 do
			t[i] = string.rep("x", 1000) .. i
		end
		return #t
	end

	local CMD = {}

	function CMD.alloc()
		local ok, err = pcall(hog)
		collectgarbage()
		skynet.retpack(ok, tostring(err))
	end

	function CMD.alloc_uncaught()
		-- one allocation bigger than the whole limit. (Not the incremental hog: when
		-- that fails uncaught, the dead coroutine still holds everything it built
		-- until lualib closes it, and lualib's own error path needs memory first,
		-- so whether the service recovers depends on a few bytes of slack, with
		-- upstream's lualib as well.)
		skynet.retpack(#string.rep("z", LIMIT))
	end

	function CMD.small(n)
		-- an allocation well under the limit still works
		skynet.retpack(#string.rep("y", n))
	end

	function CMD.info()
		skynet.retpack(memlimit_cleared, collectgarbage "count")
	end

	tester.serve(CMD)
	return
end

local eq, ok, raises = tester.eq, tester.ok, tester.raises

tester.run("test_memlimit", function()
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	local line = tester.wait_log("Set memory limit to 4.00 M")
	ok(line:find(skynet.address(slave), 1, true), "the limit line comes from the slave: " .. line)

	local cleared, kb = skynet.call(slave, "lua", "info")
	eq(cleared, true, "skynet.memlimit can be set only once")
	ok(kb < LIMIT / 1024, "heap under the limit at start: " .. kb .. " KiB")

	local aok, err = skynet.call(slave, "lua", "alloc")
	eq(aok, false, "the hog fails")
	ok(err:find("not enough memory", 1, true), "hog error: " .. err)
	eq(skynet.call(slave, "lua", "small", 10000), 10000, "small allocation after the failure")

	raises("call failed", skynet.call, slave, "lua", "alloc_uncaught")
	eq(skynet.call(slave, "lua", "small", 20000), 20000, "serving after an uncaught memory error")
end)
