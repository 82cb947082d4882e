-- proto: the example's schemas. c2s are the client's requests, s2c the server's.
-- Both share the package header that carries a message's protocol tag and session.
local parser = require "sprotoparser"

local proto = {}

proto.c2s = parser.parse [[
.package {
	type 0 : integer
	session 1 : integer
}

handshake 1 {
	response {
		msg 0 : string
	}
}

get 2 {
	request {
		what 0 : string
	}
	response {
		result 0 : string
	}
}

set 3 {
	request {
		what 0 : string
		value 1 : string
	}
}

quit 4 {}
]]

proto.s2c = parser.parse [[
.package {
	type 0 : integer
	session 1 : integer
}

heartbeat 1 {}
]]

return proto
