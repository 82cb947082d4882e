-- benchlib: the shared half of every benchmark service in bench/. It reads
-- sizes from the config, takes wall-clock and process-CPU readings inside the
-- node, and prints the single result line the runner (runtime/benches/core.rs)
-- parses:
--
--     BENCH <name> <primary>=<v> <key>=<v> ... wall_s=<v> cpu_s=<v> cpu_pct=<v>
--
-- then aborts the node, so one node run is one measurement. Only the Lua
-- standard library and the public skynet API are used, so the same file runs
-- on C skynet with upstream's lualib.
local skynet = require "skynet"
require "skynet.manager"	-- skynet.abort

local M = {}

-- Linux reports utime/stime in USER_HZ ticks, which is 100 on every mainstream
-- architecture; Lua cannot call sysconf, so it is fixed here.
local CLOCK_TICKS = 100

-- A positive integer size from the config (`bench_n = 1000`), or the default.
-- Config values arrive as strings; anything unusable falls back to the
-- default rather than failing the run halfway.
function M.env_int(key, default)
	local v = math.tointeger(tonumber(skynet.getenv(key) or ""))
	if v and v > 0 then
		return v
	end
	return default
end

-- Process CPU time (user + system, all threads) in seconds, or nil where
-- /proc is unavailable. Measuring the whole process on purpose: the worker,
-- timer and any helper threads all count as cost of the workload.
function M.cpu_s()
	local f = io.open("/proc/self/stat", "r")
	if not f then
		return nil
	end
	local s = f:read "a"
	f:close()
	-- comm (field 2) may itself contain ") ", so split after the last ')'.
	local rest = s and s:match ".*%)%s+(.*)"
	if not rest then
		return nil
	end
	local fields = {}
	for w in rest:gmatch "%S+" do
		fields[#fields + 1] = w
	end
	-- rest starts at field 3 (state); utime/stime are fields 14/15
	local utime, stime = tonumber(fields[12]), tonumber(fields[13])
	if not (utime and stime) then
		return nil
	end
	return (utime + stime) / CLOCK_TICKS
end

-- Resident set size of the whole process in KB (VmRSS), or nil.
function M.rss_kb()
	local f = io.open("/proc/self/status", "r")
	if not f then
		return nil
	end
	local s = f:read "a"
	f:close()
	return tonumber(s and s:match "VmRSS:%s*(%d+)")
end

-- A point in time: monotonic nanoseconds and process CPU seconds.
function M.mark()
	return { ns = skynet.hpc(), cpu = M.cpu_s() }
end

-- Seconds of wall time since a mark.
function M.since(mark)
	return (skynet.hpc() - mark.ns) / 1e9
end

-- Fixed, locale-free formatting so the runner can take medians: integers
-- stay integers, everything else gets 4 significant digits (at least 3
-- decimals below 1).
local function fmt(v)
	if type(v) == "number" then
		if math.type(v) == "integer" then
			return string.format("%d", v)
		end
		if v ~= v or v == math.huge or v == -math.huge then
			return "nan"
		end
		local a = math.abs(v)
		if a >= 1000 then
			return string.format("%.0f", v)
		elseif a >= 100 then
			return string.format("%.1f", v)
		elseif a >= 10 then
			return string.format("%.2f", v)
		else
			return string.format("%.3f", v)
		end
	end
	-- values are single tokens: no spaces allowed in the line format
	return (tostring(v):gsub("%s", "_"))
end

-- Prints the result line and aborts the node. `fields` is an ordered list
-- of { key, value } pairs, primary figure first; `mark` is the mark taken
-- when the measured section began, for the wall/CPU columns appended last.
function M.report(name, fields, mark)
	local parts = { "BENCH", name }
	for _, kv in ipairs(fields) do
		parts[#parts + 1] = kv[1] .. "=" .. fmt(kv[2])
	end
	if mark then
		local wall = M.since(mark)
		parts[#parts + 1] = "wall_s=" .. fmt(wall)
		local cpu = M.cpu_s()
		if cpu and mark.cpu then
			local used = cpu - mark.cpu
			parts[#parts + 1] = "cpu_s=" .. fmt(used)
			-- above 100 means more than one core was busy
			parts[#parts + 1] = "cpu_pct=" .. fmt(wall > 0 and used / wall * 100 or 0.0)
		end
	end
	-- print, not skynet.error: the line must not depend on logger formatting
	print(table.concat(parts, " "))
	skynet.abort()
end

-- Runs `body` as the start service's main function. A failure prints the
-- traceback, prints a one-line `BENCHERROR <name> <message>` and aborts, so a
-- broken benchmark ends the node with a readable message instead of leaving
-- it running until the runner's timeout.
function M.main(name, body)
	skynet.start(function()
		local trace
		local ok, err = xpcall(body, function(e)
			trace = debug.traceback(tostring(e), 2)
			return e
		end)
		if not ok then
			-- print, because the logger would not get to it before the abort
			print(trace)
			local msg = tostring(err):gsub("%s+", " ")
			print("BENCHERROR " .. name .. " " .. msg)
			skynet.abort()
		end
	end)
end

return M
