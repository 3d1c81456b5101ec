-- Argo CD health check for ladder.dev/ScalingExperiment.
--
-- Derived from what the operator writes into the status: the conditions (Ready, Progressing,
-- Degraded, Suspended) and the phase. A status older than the spec (observedGeneration behind
-- metadata.generation) says nothing about the current spec, so it reads as Progressing.
-- Written for Argo CD's Lua VM (Lua 5.1, base and table libraries only): no string library.
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local function progress(status)
  if status.summary ~= nil and status.summary.progress ~= nil then
    return " (sizes done: " .. status.summary.progress .. ")"
  end
  return ""
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ladder operator to report a status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local degraded = condition(status, "Degraded")
if status.phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = "Invalid spec: " .. describe(degraded, status.message or "see the experiment's events")
  return hs
end
if isTrue(degraded) or status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = describe(degraded, status.message or "The experiment failed")
  return hs
end

local suspended = condition(status, "Suspended")
if isTrue(suspended) or status.phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = describe(suspended, "Suspended by spec.suspend") .. progress(status)
  return hs
end

local ready = condition(status, "Ready")
if isTrue(ready) or status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(ready, "All sizes trained and evaluated") .. progress(status)
  return hs
end

hs.status = "Progressing"
hs.message = describe(condition(status, "Progressing"), status.message or status.phase) .. progress(status)
return hs
