-- Shared helpers for the project's Lua test services (test/test_*.lua).
--
-- A test service calls `tester.run(name, body)` instead of `skynet.start`. The body runs
-- in a forked coroutine (so the service finishes its own start-up like any real service),
-- may call, sleep and wait, and signals failure by raising an error (the check helpers
-- below raise with a readable message). Exactly one result line goes to stdout:
--     TEST PASS <name>
--     TEST FAIL <name>: <reason>
-- and then the whole node is aborted so the process exits; the Rust harness
-- (runtime/tests/lua_services.rs) reads that line and the log file.
--
-- The logger may drop lines still queued when the node aborts, so before printing the
-- result the helper writes a marker through skynet.error and waits until the marker shows
-- up in the log file: every line logged before it is then on disk for the harness.

local skynet = require "skynet"
require "skynet.manager" -- skynet.abort

local tester = {}

-- How long (centiseconds) a test body may run before the watchdog declares it hung, so
-- a lost message shows up as a readable failure rather than the harness's kill. Tests
-- that need longer (the endless-loop one waits 5-10 s for the monitor) pass their own.
local WATCHDOG = 3000

-- How long (centiseconds) to wait for a line to reach the log file.
local LOG_WAIT = 3000

local function render(v)
	if type(v) == "string" then
		if #v > 80 then
			return string.format("%q...(%d bytes)", v:sub(1, 80), #v)
		end
		return string.format("%q", v)
	elseif math.type(v) == "float" then
		return string.format("%s(float)", tostring(v))
	elseif math.type(v) == "integer" then
		return string.format("%d(integer)", v)
	end
	return tostring(v)
end
tester.render = render

local function label(what)
	return what and (what .. ": ") or ""
end

function tester.fail(msg, level)
	error(msg, (level or 1) + 1)
end

function tester.ok(v, what)
	if not v then
		error(label(what) .. "expected a true value, got " .. render(v), 2)
	end
	return v
end

-- Numbers must match in value and in subtype (1 and 1.0 differ): the serializer and
-- the command wrappers are supposed to keep integers integers.
local function same(a, b)
	if type(a) == "number" and type(b) == "number" then
		if math.type(a) ~= math.type(b) then
			return false
		end
		if a ~= a and b ~= b then
			return true -- both NaN
		end
	end
	return rawequal(a, b)
end

function tester.eq(actual, expected, what)
	if not same(actual, expected) then
		error(label(what) .. "expected " .. render(expected) .. ", got " .. render(actual), 2)
	end
	return actual
end

function tester.ne(actual, unexpected, what)
	if same(actual, unexpected) then
		error(label(what) .. "did not expect " .. render(actual), 2)
	end
	return actual
end

-- Deep structural comparison; tables must have the same keys (compared with `same`
-- after tostring-free lookup) and no metatables are considered.
local function deep_diff(a, b, path, seen)
	if type(a) ~= "table" or type(b) ~= "table" then
		if same(a, b) then
			return nil
		end
		return string.format("%s: expected %s, got %s", path, render(b), render(a))
	end
	if seen[a] == b then
		return nil
	end
	seen[a] = b
	for k, vb in next, b do
		local va = rawget(a, k)
		local d = deep_diff(va, vb, path .. "[" .. render(k) .. "]", seen)
		if d then
			return d
		end
	end
	for k in next, a do
		if rawget(b, k) == nil then
			return string.format("%s[%s]: unexpected key", path, render(k))
		end
	end
	return nil
end

function tester.deep_eq(actual, expected, what)
	local d = deep_diff(actual, expected, what or "value", {})
	if d then
		error(d, 2)
	end
	return actual
end

-- Checks the outcome of a pcall: it must have failed, and (unless `needle` is nil) with
-- an error text containing `needle` (plain substring, not a pattern). Returns the error
-- text, or nil and what is wrong.
local function check_failure(succeeded, err, needle, what)
	if succeeded then
		return nil, label(what) .. "expected an error containing " .. render(needle) .. ", but the call succeeded"
	end
	err = tostring(err)
	if needle and not err:find(needle, 1, true) then
		return nil, label(what) .. "expected an error containing " .. render(needle) .. ", got " .. render(err)
	end
	return err
end

-- Runs f(...) and requires it to raise; the error text must contain `needle` (plain
-- substring, not a pattern). Returns the error text.
function tester.raises(needle, f, ...)
	local succeeded, err = pcall(f, ...)
	local text, problem = check_failure(succeeded, err, needle)
	if problem then
		error(problem, 2)
	end
	return text
end

-- Like raises, for a call already made: `result` is table.pack(pcall(...)) (an entry of
-- what tester.concurrent returns). Returns the error text.
function tester.failed(result, needle, what)
	local text, problem = check_failure(result[1], result[2], needle, what)
	if problem then
		error(problem, 2)
	end
	return text
end

function tester.log_path()
	local p = skynet.getenv "logger"
	if p and p ~= "" then
		return p
	end
end

-- The whole log file, or nil when logging to stdout.
function tester.read_log()
	local p = tester.log_path()
	if not p then
		return nil
	end
	local f = io.open(p, "rb")
	if not f then
		return nil
	end
	local s = f:read "a"
	f:close()
	return s
end

-- The first log line containing `needle` (plain text), or nil.
function tester.find_log(needle)
	local s = tester.read_log()
	if not s then
		return nil
	end
	for line in s:gmatch "[^\n]+" do
		if line:find(needle, 1, true) then
			return line
		end
	end
end

-- Every log line containing `needle`.
function tester.log_lines(needle)
	local r = {}
	local s = tester.read_log() or ""
	for line in s:gmatch "[^\n]+" do
		if line:find(needle, 1, true) then
			r[#r + 1] = line
		end
	end
	return r
end

-- Polls the log file until a line containing `needle` appears; returns that line.
function tester.wait_log(needle, ticks)
	if not tester.log_path() then
		error("wait_log needs the logger to write to a file", 2)
	end
	local deadline = skynet.now() + (ticks or LOG_WAIT)
	while true do
		local line = tester.find_log(needle)
		if line then
			return line
		end
		if skynet.now() > deadline then
			error("no log line containing " .. render(needle), 2)
		end
		skynet.sleep(5)
	end
end

local flush_count = 0

-- Makes sure everything logged so far is in the log file.
function tester.flush_log()
	flush_count = flush_count + 1
	local marker = string.format("tester flush %08x-%d", skynet.self(), flush_count)
	skynet.error(marker)
	if tester.log_path() then
		local deadline = skynet.now() + LOG_WAIT
		while not tester.find_log(marker) do
			if skynet.now() > deadline then
				return false
			end
			skynet.sleep(1)
		end
	else
		skynet.sleep(10)
	end
	return true
end

-- Spins (without yielding) until `cond()` is true; used to hold a service busy so that
-- messages pile up in its queue. Bounded by a real-time limit so a broken core cannot
-- hang the test forever; returns whether the condition was met.
function tester.spin_until(cond, seconds)
	local limit = skynet.hpc() + math.floor((seconds or 20) * 1e9)
	while not cond() do
		if skynet.hpc() > limit then
			return false
		end
	end
	return true
end

-- Spins (as spin_until) until at least n messages wait in this service's queue; raises
-- if they never do (a caller must not go on as if they were queued).
function tester.spin_until_queued(n, seconds)
	local queued = tester.spin_until(function()
		return skynet.mqlen() >= n
	end, seconds)
	if not queued then
		error(string.format("spin_until_queued: %d of %d messages queued", skynet.mqlen(), n), 2)
	end
end

-- A count-down latch: `done()` n times releases `wait()`. Unlike a bare
-- skynet.wakeup(co), a completion that happens while the waiter is suspended in
-- something else (a call, say) is not lost.
function tester.latch(n)
	local count, waiting = 0, false
	local token = {}
	local latch = {}
	function latch.done()
		count = count + 1
		if count >= n and waiting then
			skynet.wakeup(token)
		end
	end
	function latch.wait()
		if count < n then
			waiting = true
			skynet.wait(token)
			waiting = false
		end
	end
	return latch
end

-- Forks f(1), ..., f(n) in that order, each in its own coroutine and under pcall.
-- Returns a function that waits until all of them have finished and then returns their
-- results: results[i] is table.pack(pcall(f, i)).
function tester.fork_all(n, f)
	local results = {}
	local latch = tester.latch(n)
	for i = 1, n do
		skynet.fork(function()
			results[i] = table.pack(pcall(f, i))
			latch.done()
		end)
	end
	return function()
		latch.wait()
		return results
	end
end

-- Runs f(1), ..., f(n) concurrently (see fork_all) and returns their results once all
-- have finished.
function tester.concurrent(n, f)
	return tester.fork_all(n, f)()
end

-- For a test's helper service (a second instance of the test launched with a role
-- argument): starts the service with a "lua" dispatch that runs CMD[cmd](...); an
-- unknown command raises.
function tester.serve(CMD)
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, ...)
			assert(CMD[cmd], cmd)(...)
		end)
	end)
end

local finished = false

local function one_line(s)
	return (tostring(s):gsub("\r?\n", " | "))
end

local function finish(name, ok, reason)
	if finished then
		return
	end
	finished = true
	tester.flush_log()
	if ok then
		print("TEST PASS " .. name)
	else
		print("TEST FAIL " .. name .. ": " .. one_line(reason))
	end
	skynet.abort()
end

-- Starts the service and runs body() as the test. opts.watchdog overrides the time
-- limit (centiseconds).
function tester.run(name, body, opts)
	opts = opts or {}
	skynet.start(function()
		skynet.timeout(opts.watchdog or WATCHDOG, function()
			finish(name, false, "watchdog: the test did not finish in time")
		end)
		skynet.fork(function()
			local traceback
			local ok, err = xpcall(body, function(e)
				traceback = debug.traceback(tostring(e), 2)
				return e
			end)
			if not ok then
				-- the full traceback helps whoever reads the log; the result line
				-- keeps only the message
				skynet.error("test " .. name .. " failed: " .. tostring(traceback))
			end
			finish(name, ok, err)
		end)
	end)
end

return tester
