-- wrk script: every request carries the next token of $MESHGUARD_TOKENS (one per line), round
-- robin, in `Authorization: Bearer`. A file of one token is the "steady" mix; a file of N distinct
-- tokens (N larger than every cache in the comparison) is the "cold" mix. Each wrk thread starts
-- at a different offset so threads never send the same token back to back. At the end one line
-- `MESHGUARD_RESULT {json}` carries the numbers bench/bench.py reads.
local path = os.getenv("MESHGUARD_TOKENS")
local path_q = os.getenv("MESHGUARD_PATH") or "/bench"
local tokens = {}
for line in io.lines(path) do
  if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
end

local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local i = 0
local n = #tokens
function init(args)
  i = ((id or 0) * 7919) % n
end

function request()
  i = i % n + 1
  return wrk.format("GET", path_q, { ["Authorization"] = tokens[i] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'MESHGUARD_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,"tokens":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, n))
end
