// A Log Analytics workspace and a workspace-based Application Insights component. Local (instrumentation
// key) authentication is disabled: the host sends telemetry with the managed identity
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which rbac.bicep makes a Monitoring Metrics Publisher.

@description('Region of the workspace and the component.')
param location string

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Days the workspace keeps logs.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Tags of every resource.')
param tags object = {}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
// Not a secret: with local authentication disabled it only says where to send telemetry.
output applicationInsightsConnectionString string = applicationInsights.properties.ConnectionString
