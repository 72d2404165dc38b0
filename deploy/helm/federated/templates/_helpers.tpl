{{/* The release's base name. */}}
{{- define "federated.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "federated.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Flattens a settings map into environment variables: PREFIX + Section__Key. */}}
{{- define "federated.settingsEnv" -}}
{{- $prefix := index . 0 -}}
{{- range $key, $value := index . 1 }}
{{- if kindIs "map" $value }}
{{- include "federated.settingsEnv" (list (printf "%s%s__" $prefix $key) $value) }}
{{- else }}
- name: {{ printf "%s%s" $prefix $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The secret holding the dashboard token, the agents' enrolment token. */}}
{{- define "federated.secretName" -}}
{{- printf "%s-secrets" (include "federated.fullname" .) -}}
{{- end -}}
