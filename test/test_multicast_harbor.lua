-- skynet.multicast across two harbor nodes, both on this lualib's multicastd.
-- The config key mc_side says which node this is:
--   "owner"  (harbor 1) makes the channel, has local subscribers, publishes;
--   "remote" (harbor 2) subscribes its own services to that channel (SUBR to
--            the owner), receives the owner's publish, publishes through the
--            owner (both nodes get it), unsubscribes its services (USUBR) and
--            deletes the channel from its side (DEL forwarded to the owner).
-- The two sides meet in the datacenter under MC_HARBOR. The owner listens on
-- mc_ready_port once it is up, so the Rust test knows when to start node 2.
local skynet = require "skynet"
local socket = require "skynet.socket"
local mc = require "skynet.multicast"
local dc = require "skynet.datacenter"
local tester = require "tester"
local eq, ok = tester.eq, tester.ok

local role = ...

if role == "sub" then
	local got = {}
	local ch
	tester.serve {
		subscribe = function(id)
			ch = mc.new {
				channel = id,
				dispatch = function(_, source, ...)
					got[#got + 1] = { source, ... }
				end,
			}
			ch:subscribe()
			skynet.retpack(true)
		end,
		unsubscribe = function()
			ch:unsubscribe()
			skynet.retpack(true)
		end,
		got = function()
			skynet.retpack(got)
		end,
	}
	return
end

local N = 3

local function start_subscribers(id)
	local subs = {}
	for i = 1, N do
		subs[i] = skynet.newservice(SERVICE_NAME, "sub")
		skynet.call(subs[i], "lua", "subscribe", id)
	end
	return subs
end

-- Waits until every subscriber holds `count` messages; returns their lists.
local function collect(subs, count)
	local all
	tester.spin_until(function()
		all = {}
		for i, s in ipairs(subs) do
			all[i] = skynet.call(s, "lua", "got")
			if #all[i] < count then
				return false
			end
		end
		return true
	end)
	return all
end

local function check_messages(all, index, text, harbor)
	for i, list in ipairs(all) do
		local m = list[index]
		eq(m[2], text, string.format("message %d of subscriber %d", index, i))
		eq(skynet.harbor(m[1]), harbor, "the publisher's harbor")
	end
end

local side = skynet.getenv "mc_side"

if side == "owner" then
	tester.run("test_multicast_harbor", function()
		local ch = mc.new()
		eq(ch.channel % 256, 1, "a channel of harbor 1")
		local subs = start_subscribers(ch.channel)
		dc.set("MC_HARBOR", "channel", ch.channel)
		local listener = socket.listen("127.0.0.1", tonumber(skynet.getenv "mc_ready_port"))
		socket.start(listener, function(fd)
			socket.close(fd)
		end)

		dc.wait("MC_HARBOR", "remote_subscribed")
		ch:publish("from the owner", 1)
		check_messages(collect(subs, 1), 1, "from the owner", 1)

		-- the remote node's publish comes back to this node's subscribers too
		check_messages(collect(subs, 2), 2, "from the remote", 2)

		dc.wait("MC_HARBOR", "remote_unsubscribed")
		ch:publish("after the remote left", 3)
		check_messages(collect(subs, 3), 3, "after the remote left", 1)
		dc.set("MC_HARBOR", "owner_published", true)

		-- the remote side deletes the channel: nothing more is delivered here
		dc.wait("MC_HARBOR", "remote_deleted")
		ch:publish("into the void", 4)
		skynet.sleep(20)
		eq(#skynet.call(subs[1], "lua", "got"), 3, "nothing after the delete")
		dc.set("MC_HARBOR", "owner_done", true)
		dc.wait("MC_HARBOR", "remote_done")
	end)
else
	tester.run("test_multicast_harbor", function()
		local id = dc.wait("MC_HARBOR", "channel")
		local subs = start_subscribers(id)
		dc.set("MC_HARBOR", "remote_subscribed", true)
		check_messages(collect(subs, 1), 1, "from the owner", 1)

		local ch = mc.new { channel = id }
		ch:publish("from the remote", 2)
		check_messages(collect(subs, 2), 2, "from the remote", 2)

		for _, s in ipairs(subs) do
			skynet.call(s, "lua", "unsubscribe")
		end
		dc.set("MC_HARBOR", "remote_unsubscribed", true)
		dc.wait("MC_HARBOR", "owner_published")
		skynet.sleep(20)
		eq(#skynet.call(subs[1], "lua", "got"), 2, "nothing after the unsubscribe")

		ch:delete()
		-- a round trip to our multicastd: the DEL it forwards is on the link
		-- before what we send next
		mc.new()
		dc.set("MC_HARBOR", "remote_deleted", true)
		ok(dc.wait("MC_HARBOR", "owner_done"), "the owner finished")
		dc.set("MC_HARBOR", "remote_done", true)
	end)
end
