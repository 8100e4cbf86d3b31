-- Argo CD health for WorkProfilePasscodePolicy (amapi.passcode-operator.io): Ready=True is
-- Healthy; a conflict or a failed AMAPI write is Degraded; otherwise Progressing.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for passcode-operator to pick up the policy"
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for passcode-operator to observe the latest spec"
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    hs.message = condition.message or ""
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif condition.reason == "Conflict" or condition.reason == "UpdateFailed" then
      hs.status = "Degraded"
      hs.message = condition.reason .. ": " .. hs.message
    else
      hs.status = "Progressing"
    end
    return hs
  end
end
hs.status = "Progressing"
hs.message = "No Ready condition yet"
return hs
