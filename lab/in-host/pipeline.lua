-- wrk script: send `depth` GET requests per write (HTTP pipelining). wrk counts
-- every response. Usage: wrk -s lab/loadgen/pipeline.lua ... -- 16 (bench/ and the wrk driver)
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, "/")
  end
  req = table.concat(r)
end

request = function()
  return req
end
