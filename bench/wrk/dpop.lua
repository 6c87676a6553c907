-- wrk script of the DPoP mix (RFC 9449): every request carries the access token of
-- $MESHGUARD_TOKENS (its first line) as `Authorization: DPoP <token>` and the next proof of
-- $MESHGUARD_PROOFS (one per line, each with its own `jti`) as `DPoP: <proof>`, with
-- `Host: $MESHGUARD_HOST` (the proofs' `htu` is http://$MESHGUARD_HOST<path>). A proof is never
-- sent twice: thread k of $MESHGUARD_THREADS sends the proofs k+1, k+1+T, k+1+2T, ...; a thread
-- that runs out of proofs starts again (those replays are 401s, in wrk's status errors) and
-- counts them in `wrapped`. The `MESHGUARD_RESULT {json}` line is tokens.lua's, plus `wrapped`.
local path_q = os.getenv("MESHGUARD_PATH") or "/bench"
local host = os.getenv("MESHGUARD_HOST")

local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Loaded in init (the threads' states only), each thread keeping its share of the proofs.
local auth
local proofs = {}
local i = 0
local n = 0
wrapped = 0
function init(args)
  for line in io.lines(os.getenv("MESHGUARD_TOKENS")) do
    if #line > 0 then auth = "DPoP " .. line break end
  end
  local count = tonumber(os.getenv("MESHGUARD_THREADS") or "1")
  local k = 0
  for line in io.lines(os.getenv("MESHGUARD_PROOFS")) do
    if #line > 0 then
      if k % count == (id or 0) then proofs[#proofs + 1] = line end
      k = k + 1
    end
  end
  n = #proofs
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wrapped = wrapped + 1
  elseif wrapped > 0 then
    wrapped = wrapped + 1
  end
  local headers = { ["Authorization"] = auth, ["DPoP"] = proofs[i] }
  if host then headers["Host"] = host end
  return wrk.format("GET", path_q, headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  local w = 0
  for _, t in ipairs(threads) do w = w + (tonumber(t:get("wrapped")) or 0) end
  io.write(string.format(
    'MESHGUARD_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,"tokens":1,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, w))
end
