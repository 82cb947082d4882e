-- The overload warning, as upstream's skynet_mq: when a pop leaves more than the queue's
-- threshold (1024 at first) still queued, the service logs
-- `error: May overload, message queue length = N` (N: what that pop left) and the
-- threshold doubles until it is above N; a pop that finds the queue empty sets it back
-- to 1024.
--
-- The queue lengths are built without any timing: only the slave sends to itself, in
-- bursts from inside its own handlers, while the test waits in a call. So every pop
-- leaves a known length (below, "pop -> n" is what a pop leaves, "+k" what that
-- message's handler then sends).
local skynet = require "skynet"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	local CMD = {}
	local plan, sent, handled, done

	local function send_ticks(n)
		for _ = 1, n do
			skynet.send(skynet.self(), "lua", "tick")
		end
		sent = sent + n
	end

	-- Sends `first` ticks to itself at once; the i-th tick handled then sends plan[i]
	-- more. Answers with the number of ticks handled once the last one is (the queue is
	-- empty then: nothing else is ever sent here while a run lasts).
	function CMD.run(first, ...)
		plan, sent, handled = { ... }, 0, 0
		done = skynet.response()
		send_ticks(first)
	end

	function CMD.tick()
		handled = handled + 1
		send_ticks(plan[handled] or 0)
		if handled == sent then
			done(true, handled)
		end
	end

	tester.serve(CMD)
	return
end

local eq, ok = tester.eq, tester.ok

tester.run("test_overload", function()
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	local from_slave = string.format("[%s] error: May overload, message queue length = ", skynet.address(slave))

	-- The lengths of every overload warning logged so far (all from the slave), as text.
	local function warnings()
		ok(tester.flush_log(), "the log caught up")
		local lengths = {}
		for _, line in ipairs(tester.log_lines("May overload")) do
			ok(line:find(from_slave, 1, true), "the warning comes from the slave: " .. line)
			lengths[#lengths + 1] = line:match "length = (%d+)$"
		end
		return table.concat(lengths, " ")
	end

	-- 1025 at once: pop -> 1024, 1023, ..., 0. Never above the threshold: no warning.
	eq(skynet.call(slave, "lua", "run", 1025), 1025, "ticks of the first run")
	eq(warnings(), "", "no warning while at most 1024 are left")

	-- The threshold doubles after each warning:
	--   1025 at once: pop -> 1024 (silent), +2
	--                 pop -> 1025 WARN (threshold 2048), +1024
	--                 pop -> 2048 (silent), +2
	--                 pop -> 2049 WARN (threshold 4096), +2048
	--                 pop -> 4096 (silent), +2
	--                 pop -> 4097 WARN (threshold 8192), then down to 0 silently.
	eq(skynet.call(slave, "lua", "run", 1025, 2, 1024, 2, 2048, 2), 1025 + 2 + 1024 + 2 + 2048 + 2,
		"ticks of the growing run")
	eq(warnings(), "1025 2049 4097", "one warning past each doubled threshold")

	-- The last run's queue emptied, so the threshold is 1024 again (were it still 8192,
	-- this would be silent): 1026 at once, pop -> 1025 WARN.
	--
	-- The empty pop comes before this call arrives because the node runs one worker
	-- thread (the harness sets it) taking services from the global queue in turn: the
	-- slave, still in that queue after sending its answer, comes before this service's
	-- next turn, and the yield makes this service wait for a next turn before calling.
	skynet.yield()
	eq(skynet.call(slave, "lua", "run", 1026), 1026, "ticks of the run after the reset")
	eq(warnings(), "1025 2049 4097 1025", "the threshold is back to 1024")
end)
