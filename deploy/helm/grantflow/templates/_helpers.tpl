{{/* Names, labels and the pieces shared by the server, the migration Job and the connector. */}}

{{- define "grantflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "grantflow.fullname" -}}
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

{{- define "grantflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "grantflow.labels" -}}
helm.sh/chart: {{ include "grantflow.chart" . }}
app.kubernetes.io/name: {{ include "grantflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "server"). */}}
{{- define "grantflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "grantflow.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "grantflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "grantflow.serverServiceAccountName" -}}
{{- if .Values.server.serviceAccount.create }}
{{- default (include "grantflow.fullname" .) .Values.server.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.server.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "grantflow.connectorServiceAccountName" -}}
{{- if .Values.connector.serviceAccount.create }}
{{- default (printf "%s-connector" (include "grantflow.fullname" .)) .Values.connector.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.connector.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The control plane's environment (server, init container and migration Job alike). Secrets
only through secretKeyRef: the chart never renders a secret value.
*/}}
{{- define "grantflow.serverEnv" -}}
{{- $secret := required "secrets.existingSecret: name the Secret holding the database URL" .Values.secrets.existingSecret }}
- name: GRANTFLOW_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ required "secrets.keys.databaseUrl is required" .Values.secrets.keys.databaseUrl }}
{{- with .Values.secrets.keys.adminToken }}
- name: GRANTFLOW_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- with .Values.secrets.keys.auditKey }}
- name: GRANTFLOW_AUDIT_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- with .Values.secrets.keys.oidcClientSecret }}
- name: GRANTFLOW_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- with .Values.secrets.keys.metricsToken }}
- name: GRANTFLOW_METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
- name: GRANTFLOW_HOST
  value: "0.0.0.0"
- name: GRANTFLOW_PORT
  value: {{ .Values.server.port | quote }}
- name: GRANTFLOW_BASE_URL
  value: {{ required "config.baseUrl is required" .Values.config.baseUrl | quote }}
- name: GRANTFLOW_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: GRANTFLOW_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
- name: GRANTFLOW_DB_POOL_SIZE
  value: {{ .Values.config.dbPoolSize | quote }}
- name: GRANTFLOW_COOKIE_SECURE
  value: {{ .Values.config.cookieSecure | quote }}
- name: GRANTFLOW_PROXY_HEADERS
  value: {{ .Values.config.proxyHeaders | quote }}
- name: GRANTFLOW_FORWARDED_ALLOW_IPS
  value: {{ .Values.config.forwardedAllowIps | quote }}
- name: GRANTFLOW_MANAGED_CONNECTOR
  value: {{ .Values.config.managedConnector | quote }}
{{- with .Values.config.templateUrl }}
- name: GRANTFLOW_TEMPLATE_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.oidcIssuer }}
- name: GRANTFLOW_OIDC_ISSUER
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.oidcClientId }}
- name: GRANTFLOW_OIDC_CLIENT_ID
  value: {{ . | quote }}
{{- end }}
{{- range .Values.extraEnv }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- range .Values.extraSecretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/* Writable scratch space on a read-only root filesystem. */}}
{{- define "grantflow.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
{{- define "grantflow.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
