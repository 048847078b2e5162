{{/* The chart name. */}}
{{- define "bulwark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name. */}}
{{- define "bulwark.fullname" -}}
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

{{- define "bulwark.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "bulwark.labels" -}}
helm.sh/chart: {{ include "bulwark.chart" . }}
{{ include "bulwark.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bulwark
{{- end }}

{{/* The operator pods' selector. */}}
{{- define "bulwark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bulwark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "bulwark.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bulwark.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bulwark.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "bulwark.agentImage" -}}
{{- $repo := default .Values.image.repository .Values.agent.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.agent.tag }}
{{- if and .Values.image.digest (not .Values.agent.repository) (not .Values.agent.tag) }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}
{{- end }}

{{/* Names shared by templates and operator flags. */}}
{{- define "bulwark.leaseName" -}}{{ include "bulwark.fullname" . }}{{- end }}
{{- define "bulwark.tlsSecretName" -}}{{ include "bulwark.fullname" . }}-webhook-tls{{- end }}
{{- define "bulwark.mutatingWebhookName" -}}{{ include "bulwark.fullname" . }}-sidecar-injector{{- end }}
{{- define "bulwark.validatingWebhookName" -}}{{ include "bulwark.fullname" . }}-policy-validator{{- end }}
{{- define "bulwark.webhooksEnabled" -}}
{{- if or .Values.webhook.injection.enabled .Values.webhook.validation.enabled }}true{{ end }}
{{- end }}
