-- Argo CD health for PasscodeReset (amapi.passcode-operator.io). Succeeded is Healthy, Failed is
-- Degraded (final: create a new PasscodeReset to try again), anything else is Progressing.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for passcode-operator to pick up the reset"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
local phase = obj.status.phase
local message = obj.status.message or ""
if obj.status.reason ~= nil then
  message = obj.status.reason .. ": " .. message
end
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif generation ~= nil and observed ~= nil and observed < generation and obj.status.claimedAt == nil then
  hs.status = "Progressing"
  message = "Waiting for passcode-operator to observe the latest spec"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
