{{/* The name of every object: fixed, as in manifests/, unless fullnameOverride says otherwise. */}}
{{- define "po.name" -}}
{{- .Values.fullnameOverride | default "passcode-operator" | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "po.selectorLabels" -}}
app.kubernetes.io/name: {{ include "po.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "po.labels" -}}
{{ include "po.selectorLabels" . }}
app.kubernetes.io/part-of: passcode-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "po.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Refuse values that cannot work, with a message naming the value. */}}
{{- define "po.validate" -}}
{{- $mode := .Values.credentials.mode -}}
{{- if not (has $mode (list "key" "gke" "wif")) -}}
{{- fail (printf "credentials.mode must be key, gke or wif (got %q)" $mode) -}}
{{- end -}}
{{- if and (eq $mode "gke") (not .Values.credentials.gke.serviceAccount) -}}
{{- fail "credentials.mode=gke needs credentials.gke.serviceAccount (the Google service account's email)" -}}
{{- end -}}
{{- if eq $mode "wif" -}}
{{- if and (not .Values.credentials.wif.config) (not .Values.credentials.wif.existingConfigMap) -}}
{{- fail "credentials.mode=wif needs credentials.wif.config (--set-file credentials.wif.config=credentials.json) or credentials.wif.existingConfigMap" -}}
{{- end -}}
{{- if not (include "po.wifAudience" .) -}}
{{- fail "credentials.mode=wif needs credentials.wif.audience (the provider's name) when the credential configuration is not given in credentials.wif.config" -}}
{{- end -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection) -}}
{{- fail "replicas > 1 needs leaderElection: true (otherwise every replica acts)" -}}
{{- end -}}
{{- if not (has .Values.unknownRequester (list "refuse" "run")) -}}
{{- fail (printf "unknownRequester must be refuse or run (got %q)" .Values.unknownRequester) -}}
{{- end -}}
{{- if and (eq .Values.unknownRequester "refuse") (not .Values.webhook.enabled) -}}
{{- fail "unknownRequester=refuse needs webhook.enabled (nothing would record the requester)" -}}
{{- end -}}
{{- if and .Values.webhook.url (not (hasPrefix "https://" .Values.webhook.url)) -}}
{{- fail "webhook.url must be an https:// URL" -}}
{{- end -}}
{{- end -}}

{{/* The WIF credential configuration, parsed; checked to read the projected token. */}}
{{- define "po.wifConfig" -}}
{{- if .Values.credentials.wif.config -}}
{{- $cfg := fromJson .Values.credentials.wif.config -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "credentials.wif.config is not JSON: %s" (get $cfg "Error")) -}}
{{- end -}}
{{- if ne (get $cfg "type" | toString) "external_account" -}}
{{- fail "credentials.wif.config must be an external_account credential configuration (gcloud iam workload-identity-pools create-cred-config)" -}}
{{- end -}}
{{- $file := "" -}}
{{- with get $cfg "credential_source" -}}{{- $file = get . "file" | toString -}}{{- end -}}
{{- if ne $file "/var/run/secrets/amapi/token" -}}
{{- fail (printf "credentials.wif.config: credential_source.file must be /var/run/secrets/amapi/token, where the chart projects the token (got %q); create it with --credential-source-file=/var/run/secrets/amapi/token" $file) -}}
{{- end -}}
{{- toJson $cfg -}}
{{- end -}}
{{- end -}}

{{- define "po.wifAudience" -}}
{{- if .Values.credentials.wif.audience -}}
{{- .Values.credentials.wif.audience -}}
{{- else if .Values.credentials.wif.config -}}
{{- get (include "po.wifConfig" . | fromJson) "audience" | default "" -}}
{{- end -}}
{{- end -}}

{{/* Where the API server calls the webhook: the Service, or webhook.url. */}}
{{- define "po.clientConfig" -}}
{{- if .root.Values.webhook.url -}}
url: {{ printf "%s/%s" (trimSuffix "/" .root.Values.webhook.url) .path | quote }}
{{- else -}}
service: {name: {{ include "po.name" .root }}-webhook, namespace: {{ .root.Release.Namespace }}, path: /{{ .path }}, port: 443}
{{- end -}}
{{- end -}}
