---@meta corio.process
-- LuaLS definitions of `require "corio.process"` (docs/API-fs-process.md).

---A child process (`process.spawn`).
---@class corio.Process
---@field pid integer
---@field stdin corio.Stream? for "pipe"
---@field stdout corio.Stream? for "pipe"
---@field stderr corio.Stream? for "pipe"
---@field code integer? once exited
---@field signal string? once killed by a signal
local Process = {}

---Waits for the exit: code (128 + signum after a signal) and the signal's name.
---@async
---@return integer code
---@return string? signal
function Process:wait() end

---@param sig? string|integer default "SIGTERM"
---@return boolean sent false once the exit was seen
function Process:kill(sig) end

---@return boolean
function Process:running() end

---The live environment: reading, setting and `= nil` act on it.
---@class corio.process.env: { [string]: string }

---@alias corio.Stdio "inherit"|"null"|"pipe"|corio.Stream|corio.File|integer

---@class corio.SpawnOptions
---@field cwd? string
---@field env? table<string, string> replaces the environment
---@field stdin? corio.Stdio
---@field stdout? corio.Stdio
---@field stderr? corio.Stdio
---@field detached? boolean
---@field uid? integer
---@field gid? integer

---@class corio.ExecOptions : corio.SpawnOptions
---@field input? string written to stdin, then closed
---@field timeout? number seconds; then SIGKILL and TIMEOUT

---@class corio.process
---@field Process corio.Process the Process class
---@field argv table<integer, string> the script's arg table
---@field env corio.process.env
---@field pid integer
---@field execpath string the running binary
local process = {}

---@param argv string[]
---@param opts? corio.SpawnOptions
---@return corio.Process
function process.spawn(argv, opts) end

---Runs a child to completion and collects its output.
---@async
---@param argv string[]
---@param opts? corio.ExecOptions
---@return { code: integer, signal: string?, stdout: string?, stderr: string? }
function process.exec(argv, opts) end

---@return integer
function process.ppid() end

---@return integer
function process.getuid() end

---@return string
function process.cwd() end

---@param path string
function process.chdir(path) end

---@param pid integer
---@param sig? string|integer default "SIGTERM"
function process.kill(pid, sig) end

---Ends the process after the other tasks unwind (up to 1 s).
---@param code? integer|boolean default 0
function process.exit(code) end

return process
