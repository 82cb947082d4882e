-- protoloader: puts the example's schemas into the process-wide sproto slots
-- (1: client to server, 2: server to client) and stays alive, as the slots are
-- meant to outlive nobody's use of them.
local skynet = require "skynet"
local sprotoloader = require "sprotoloader"
local proto = require "proto"

skynet.start(function()
	sprotoloader.save(proto.c2s, 1)
	sprotoloader.save(proto.s2c, 2)
end)
