// The Event Grid topic the app publishes DICOM change events to (docs/conformance.md "Events"). It takes
// CloudEvents 1.0, the format the app sends, and only Entra ID tokens: access keys are disabled, so
// the identity's "EventGrid Data Sender" role (rbac.bicep) is the only way to publish.

@description('Region of the topic.')
param location string

@description('Name of the Event Grid topic.')
param name string

@description('Tags of every resource.')
param tags object = {}

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

output name string = topic.name
output id string = topic.id
@description('The URL the app POSTs events to (https://<topic>.<region>-1.eventgrid.azure.net/api/events).')
output endpoint string = topic.properties.endpoint
