-- skynet.multicast and multicastd on one node: a channel's messages reach every
-- subscriber once and in order, with any Lua values and with a custom
-- pack/unpack; unsubscribe and delete stop delivery; several channels stay
-- apart; a subscriber whose dispatch fails, or that gets a multicast message
-- of the wrong size, logs the error and keeps running.
local skynet = require "skynet"
local mc = require "skynet.multicast"
local tester = require "tester"
local eq, deep_eq, ok = tester.eq, tester.deep_eq, tester.ok

local role = ...

if role == "sub" then
	local got = {}	-- channel id -> list of { source, values... }
	local chans = {}
	local CMD = {}
	function CMD.subscribe(id, custom)
		local conf = {
			channel = id,
			dispatch = function(ch, source, ...)
				local list = got[ch.channel]
				list[#list + 1] = table.pack(source, ...)
				if ... == "fail" then
					error "subscriber dispatch boom"
				end
			end,
		}
		if custom then
			conf.unpack = function(msg, sz)
				return "unpacked", skynet.unpack(msg, sz)
			end
		end
		local ch = mc.new(conf)
		got[id] = got[id] or {}
		chans[id] = ch
		ch:subscribe()
		skynet.retpack(tostring(ch))
	end
	function CMD.unsubscribe(id)
		chans[id]:unsubscribe()
		skynet.retpack(true)
	end
	function CMD.got(id)
		skynet.retpack(got[id])
	end
	tester.serve(CMD)
	return
end

local N = 8

-- Waits until every subscriber holds `count` messages of channel id; returns them.
local function collect(subs, id, count)
	local all
	tester.spin_until(function()
		all = {}
		for i, s in ipairs(subs) do
			all[i] = skynet.call(s, "lua", "got", id)
			if #all[i] < count then
				return false
			end
		end
		return true
	end)
	return all
end

tester.run("test_multicast", function()
	local me = skynet.self()
	local ch = mc.new()
	eq(ch.channel % 256, skynet.harbor(me), "the low 8 bits are this harbor")
	eq(tostring(ch), string.format("[Multicast:%x]", ch.channel), "tostring")
	local other = mc.new()
	ok(other.channel ~= ch.channel, "a new channel id")
	eq(other.channel, ch.channel + 256, "the next id")

	local subs = {}
	for i = 1, N do
		subs[i] = skynet.newservice(SERVICE_NAME, "sub")
		eq(skynet.call(subs[i], "lua", "subscribe", ch.channel), tostring(ch))
	end

	ch:publish("hello", 1, { list = { 1, 2, 3 } })
	ch:publish("second", 2.5, true, nil, "end")
	local all = collect(subs, ch.channel, 2)
	for i = 1, N do
		eq(#all[i], 2, "messages of subscriber " .. i)
		local first, second = all[i][1], all[i][2]
		eq(first[1], me, "source is the publisher")
		deep_eq({ table.unpack(first, 2, first.n) }, { "hello", 1, { list = { 1, 2, 3 } } }, "first")
		eq(second.n, 6, "values of the second, nil included")
		eq(second[2], "second")
		eq(second[3], 2.5)
		eq(second[4], true)
		eq(second[5], nil)
		eq(second[6], "end")
	end

	-- a publish on the other channel reaches only its subscribers
	skynet.call(subs[1], "lua", "subscribe", other.channel)
	other:publish "other"
	local o = collect({ subs[1] }, other.channel, 1)
	eq(o[1][1][2], "other", "other channel")
	eq(#skynet.call(subs[2], "lua", "got", ch.channel), 2, "nothing extra on the first")

	-- a failing dispatch: logged, the package still closed, the service alive
	ch:publish "fail"
	collect(subs, ch.channel, 3)
	tester.wait_log("subscriber dispatch boom")

	-- unsubscribe: the rest still get it
	skynet.call(subs[N], "lua", "unsubscribe", ch.channel)
	ch:publish "after unsubscribe"
	all = collect({ table.unpack(subs, 1, N - 1) }, ch.channel, 4)
	for i = 1, N - 1 do
		eq(all[i][4][2], "after unsubscribe")
	end
	eq(#skynet.call(subs[N], "lua", "got", ch.channel), 3, "the unsubscribed one got no more")

	-- a custom pack and unpack
	local raw = mc.new {
		channel = ch.channel,
		pack = function(...)
			return skynet.pack("packed", ...)
		end,
	}
	skynet.call(subs[N], "lua", "subscribe", ch.channel, true)
	raw:publish "bytes"
	local r = collect({ subs[N] }, ch.channel, 4)
	deep_eq({ table.unpack(r[1][4], 2) }, { "unpacked", "packed", "bytes" }, "custom unpack")
	all = collect({ table.unpack(subs, 1, N - 1) }, ch.channel, 5)
	deep_eq({ table.unpack(all[1][5], 2) }, { "packed", "bytes" }, "custom pack")

	-- bad input: a multicast message of the wrong size fails in the subscriber's
	-- unpack, which logs it and goes on
	skynet.rawsend(subs[1], "multicast", "abc")
	tester.wait_log("Invalid multicast package size 3")
	ch:publish "still alive"
	all = collect({ subs[1] }, ch.channel, 6)
	eq(all[1][6][2], "still alive", "the subscriber survived the bad message")

	-- a deleted channel delivers nothing; publishing to it frees the message
	local id = ch.channel
	ch:delete()
	eq(ch.channel, nil, "a deleted channel object has no id")
	raw:publish "into the void"
	other:publish "other again"
	collect({ subs[1] }, other.channel, 2)
	eq(#skynet.call(subs[2], "lua", "got", id), 6, "nothing after delete")
end)
