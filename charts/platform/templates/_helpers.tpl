{{/*
Helpers shared by every template. A template ranges over `platform.services` and gets, per
service, a context `dict "root" $ "name" <name> "svc" <service values merged over serviceDefaults>`.
*/}}

{{- define "platform.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; service objects add their selector labels (name, instance). */}}
{{- define "platform.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "platform.commonLabels" -}}
{{ include "platform.baseLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The enabled services as YAML: { name: values merged over serviceDefaults }. */}}
{{- define "platform.services" -}}
{{- $out := dict -}}
{{- range $name, $raw := .Values.services -}}
{{- if ne (toString (dig "enabled" true $raw)) "false" -}}
{{- $_ := set $out $name (mustMergeOverwrite (deepCopy $.Values.serviceDefaults) (deepCopy $raw)) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{- define "platform.svc.fullname" -}}
{{- printf "%s-%s" (include "platform.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.svc.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "platform.svc.labels" -}}
{{ include "platform.baseLabels" .root }}
{{ include "platform.svc.selectorLabels" . }}
app.kubernetes.io/component: service
app.kubernetes.io/version: {{ include "platform.svc.tag" . | quote }}
{{- end -}}

{{- define "platform.svc.tag" -}}
{{- (dig "image" "tag" "" .svc) | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- end -}}

{{- define "platform.svc.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := dig "image" "repository" "" .svc -}}
{{- if not $repo -}}
{{- $repo = printf "%s%s" $img.repositoryPrefix .name -}}
{{- if $img.registry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $repo -}}{{- end -}}
{{- end -}}
{{- printf "%s:%s" $repo (include "platform.svc.tag" .) -}}
{{- end -}}

{{/* Where the JWKS ConfigMap is mounted. */}}
{{- define "platform.jwksPath" -}}/etc/platform/jwks/jwks.json{{- end -}}
{{- define "platform.configPath" -}}/etc/platform/config/platform.toml{{- end -}}

{{/* The service's settings: chart-wide `settings` < the service's `settings` < what the chart sets. */}}
{{- define "platform.svc.settings" -}}
{{- $s := mustMergeOverwrite (deepCopy .root.Values.settings) (deepCopy (.svc.settings | default dict)) -}}
{{- $auth := get $s "auth" | default dict -}}
{{- if .root.Values.auth.jwksConfigMap -}}
{{- $_ := set $auth "jwks_file" (include "platform.jwksPath" .) -}}
{{- else if and (get $auth "jwks_url") (not (hasKey $auth "jwks_file")) -}}
{{- /* The built-in default names a file; a URL alone must clear it. */ -}}
{{- $_ := set $auth "jwks_file" "" -}}
{{- end -}}
{{- $_ := set $s "auth" $auth -}}
{{- toYaml $s -}}
{{- end -}}

{{/* The settings as a TOML file: one table per section, scalar values only. */}}
{{- define "platform.svc.toml" -}}
# Settings of {{ .name }} (PLATFORM_CONFIG). Environment variables PLATFORM__SECTION__KEY win over
# this file; the database URL and Kafka credentials come from Secrets through the environment.
{{- range $section, $keys := (include "platform.svc.settings" . | fromYaml) }}

[{{ $section }}]
{{- range $k, $v := $keys }}
{{ $k }} = {{ include "platform.tomlValue" $v }}
{{- end }}
{{- end }}
{{ end -}}

{{- define "platform.tomlValue" -}}
{{- if kindIs "string" . -}}{{- toJson . -}}
{{- else if kindIs "bool" . -}}{{- . -}}
{{- else if and (kindIs "float64" .) (eq . (floor .)) -}}{{- int64 . -}}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}{{- . -}}
{{- else -}}{{- fail (printf "settings take scalar values only, not %s" (kindOf .)) -}}
{{- end -}}
{{- end -}}
