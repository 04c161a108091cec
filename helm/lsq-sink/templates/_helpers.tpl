{{/*
Expand the name of the chart.
*/}}
{{- define "lsq-sink.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "lsq-sink.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "lsq-sink.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "lsq-sink.labels" -}}
helm.sh/chart: {{ include "lsq-sink.chart" . }}
{{ include "lsq-sink.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "lsq-sink.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lsq-sink.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "lsq-sink.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lsq-sink.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (the appVersion by default).
*/}}
{{- define "lsq-sink.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The Secret mounted as the connector's secrets directory: the existing one, or the chart's.
*/}}
{{- define "lsq-sink.secretName" -}}
{{- .Values.credentials.existingSecret | default (include "lsq-sink.fullname" .) }}
{{- end }}

{{/*
The health port (/metrics, /livez, /readyz) as the connector's config sets it.
*/}}
{{- define "lsq-sink.healthPort" -}}
{{- ((.Values.config | default dict).health | default dict).port | default 9400 | int }}
{{- end }}

{{/*
The connector's shutdown grace: config.flow.shutdown_grace_seconds, or its default 25 (0 is a value).
*/}}
{{- define "lsq-sink.shutdownGraceSeconds" -}}
{{- $flow := (.Values.config | default dict).flow | default dict }}
{{- if hasKey $flow "shutdown_grace_seconds" }}{{ $flow.shutdown_grace_seconds }}{{ else }}25{{ end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the shutdown grace rounded up, plus shutdownMarginSeconds, so the
kubelet's SIGKILL never cuts the connector's own orderly shutdown short.
*/}}
{{- define "lsq-sink.terminationGracePeriodSeconds" -}}
{{- add (include "lsq-sink.shutdownGraceSeconds" . | float64 | ceil | int) .Values.shutdownMarginSeconds }}
{{- end }}

{{/*
Whether the PodDisruptionBudget is rendered: "auto" means only with more than one replica.
*/}}
{{- define "lsq-sink.pdbEnabled" -}}
{{- $mode := toString .Values.podDisruptionBudget.enabled }}
{{- if or (eq $mode "true") (and (eq $mode "auto") (gt (int .Values.replicaCount) 1)) }}true{{ end }}
{{- end }}

{{/*
Paths of keys named like a connector secret anywhere under .value (one per line). Called with
(dict "path" "config.accounts" "value" $map); recurses into maps and lists.
*/}}
{{- define "lsq-sink.secretKeysIn" -}}
{{- $path := .path }}
{{- if kindIs "map" .value }}
{{- range $key, $item := .value }}
{{- if has $key (list "access_key" "secret_key" "api_key") }}
{{ printf "%s.%s" $path $key }}
{{- end }}
{{- include "lsq-sink.secretKeysIn" (dict "path" (printf "%s.%s" $path $key) "value" $item) }}
{{- end }}
{{- else if kindIs "slice" .value }}
{{- range $index, $item := .value }}
{{- include "lsq-sink.secretKeysIn" (dict "path" (printf "%s.%d" $path $index) "value" $item) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse values that would deploy a broken or leaky connector, each with a message naming the
value and the fix. Included by the Deployment, so every render runs it.
*/}}
{{- define "lsq-sink.validate" -}}
{{- $config := .Values.config | default dict }}
{{- $kafka := $config.kafka | default dict }}
{{- $registry := $config.schema_registry | default dict }}
{{- $health := $config.health | default dict }}
{{- $credentials := .Values.credentials }}
{{- /* Secrets never go into the ConfigMap. */}}
{{- $found := include "lsq-sink.secretKeysIn" (dict "path" "config.accounts" "value" ($config.accounts | default dict)) | splitList "\n" | compact }}
{{- if hasKey $kafka "sasl_password" }}
{{- $found = append $found "config.kafka.sasl_password" }}
{{- end }}
{{- if hasKey $registry "basic_auth_user_info" }}
{{- $found = append $found "config.schema_registry.basic_auth_user_info" }}
{{- end }}
{{- range $client := list "consumer" "producer" }}
{{- range $key, $_ := (get $kafka $client | default dict) }}
{{- if regexMatch "(?i)(password|secret)|^ssl\\.key\\.pem$" $key }}
{{- $found = append $found (printf "config.kafka.%s.%s" $client $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $found }}
{{- fail (printf "config holds secrets (%s): they would be stored in a ConfigMap. Give them in credentials (accounts.<name>.accessKey/secretKey/apiKey, schemaRegistryBasicAuthUserInfo, kafkaSaslPassword) or in credentials.existingSecret: they are mounted as files in the secrets directory" (join ", " .)) }}
{{- end }}
{{- /* Secret files are matched with lowercased names, so account names must be lowercase. */}}
{{- range $name, $_ := ($config.accounts | default dict) }}
{{- if ne $name (lower $name) }}
{{- fail (printf "config.accounts.%s: account names must be lowercase (the connector reads secret files with lowercased names, so %s would never get its keys)" $name $name) }}
{{- end }}
{{- end }}
{{- if and $credentials.existingSecret (or $credentials.accounts $credentials.schemaRegistryBasicAuthUserInfo $credentials.kafkaSaslPassword) }}
{{- fail "credentials: set either credentials.existingSecret or the credentials values (accounts, schemaRegistryBasicAuthUserInfo, kafkaSaslPassword), not both" }}
{{- end }}
{{- /* The health port carries the probes and the metrics. */}}
{{- $probes := or .Values.livenessProbe.enabled .Values.readinessProbe.enabled .Values.startupProbe.enabled .Values.serviceMonitor.enabled }}
{{- if and $probes (eq (toString $health.enabled) "false") }}
{{- fail "config.health.enabled is false, but the probes and the ServiceMonitor use the health port: enable it, or disable livenessProbe, readinessProbe, startupProbe and serviceMonitor" }}
{{- end }}
{{- if has (toString $health.host) (list "127.0.0.1" "localhost" "::1") }}
{{- fail (printf "config.health.host %s is reachable only inside the pod: the kubelet's probes and Prometheus come from outside; use 0.0.0.0" $health.host) }}
{{- end }}
{{- if and .Values.serviceMonitor.enabled (not .Values.service.enabled) }}
{{- fail "serviceMonitor.enabled needs service.enabled: the ServiceMonitor scrapes the pods through the Service" }}
{{- end }}
{{- /* Settings the chart derives things from must stay in config, and secrets out of the spec. */}}
{{- range $var := .Values.env }}
{{- $name := upper (toString $var.name) }}
{{- /* Whole sections too: LSQ_SINK_FLOW='{"shutdown_grace_seconds": 60}' is a JSON override. */}}
{{- if or (hasPrefix "LSQ_SINK_HEALTH" $name) (has $name (list "LSQ_SINK_FLOW" "LSQ_SINK_FLOW__SHUTDOWN_GRACE_SECONDS")) }}
{{- fail (printf "env %s: set this in config instead: the chart derives the probes, ports and terminationGracePeriodSeconds from config" $var.name) }}
{{- end }}
{{- if and (hasKey $var "value") (regexMatch "^LSQ_SINK_.*(ACCESS_KEY|SECRET_KEY|API_KEY|SASL_PASSWORD|BASIC_AUTH_USER_INFO)$" $name) }}
{{- fail (printf "env %s: a secret given as a plain value would be stored in the Deployment; use valueFrom.secretKeyRef, or credentials" $var.name) }}
{{- end }}
{{- end }}
{{- end }}
