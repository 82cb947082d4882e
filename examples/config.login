-- Runs this repository's login example (examples/login/): a login server,
-- a game gate built on snax.msgserver, one agent per logged-in user. From
-- the repository root:
--   target/release/skynet examples/config.login
-- and, in another terminal, the client:
--   target/release/skynet lua examples/login/client.lua
-- The ports and names below are read by examples/login/main.lua; the
-- client takes the same values as key=value arguments (see its header).
root = "./"
thread = 8
harbor = 0
start = "main"
bootstrap = "snlua bootstrap"
luaservice = root.."service/?.lua;"..root.."examples/login/?.lua"
lualoader = root.."lualib/loader.lua"
lua_path = root.."lualib/?.lua;"..root.."lualib/?/init.lua"
lua_cpath = root.."luaclib/?.so"
cpath = root.."cservice/?.so"

login_host = "127.0.0.1"	-- where the login server listens
login_port = 8001
gate_host = "0.0.0.0"		-- where the game gate listens
gate_port = 8888
gate_maxclient = 1024
servername = "sample"		-- the game server's name inside login tokens
login_password = "password"	-- the one password the example accepts
handshake_timeout = 30		-- seconds a client may take to handshake
backlog = 128			-- listen queue of both servers (bursts of connects)
