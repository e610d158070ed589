// Data-plane roles of the function app's identity. Shared keys are disabled on the account, so these
// role assignments are the only way in.

@description('Account of the instances, the index and the deployment packages.')
param storageAccountName string

@description('Application Insights component that accepts only Entra ID authenticated telemetry.')
param applicationInsightsName string

@description('Event Grid topic the app publishes the DICOM events to.')
param eventGridTopicName string

@description('Principal (object) ID of the user-assigned identity.')
param principalId string

// Built-in role definitions (the same GUIDs in every tenant).
// - Storage Blob Data Owner: the instances container (the app creates it if missing), the Flex
//   Consumption deployment packages, the Functions host's own blobs (timer schedule, locks), and the
//   user delegation keys that sign upload-session URLs (generateUserDelegationKey).
// - Storage Table Data Contributor: the index table (the app creates it if missing) and the host's
//   diagnostic events.
// - Storage Queue Data Contributor: the operations queue, which the app sends to ($bulkUpdate) and the
//   queue trigger reads, hides, deletes and poisons (it creates '<queue>-poison' when missing). The
//   trigger alone needs Storage Queue Data Reader and Message Processor, the sender Message Sender:
//   Contributor holds all three and the queue creation.
var storageRoles = [
  {
    name: 'Storage Blob Data Owner'
    id: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  }
  {
    name: 'Storage Table Data Contributor'
    id: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  }
  {
    name: 'Storage Queue Data Contributor'
    id: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  }
]

var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

// EventGrid Data Sender: publish to the topic (its access keys are disabled).
var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource eventGridTopic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: eventGridTopicName
}

resource storageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in storageRoles: {
    name: guid(storage.id, principalId, role.id)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.id)
      principalId: principalId
      principalType: 'ServicePrincipal'
      description: '${role.name} for the DICOMweb function app'
    }
  }
]

resource telemetryRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Monitoring Metrics Publisher for the DICOMweb function app'
  }
}

resource eventsRoleAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventGridTopic.id, principalId, eventGridDataSenderRoleId)
  scope: eventGridTopic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'EventGrid Data Sender for the DICOMweb function app'
  }
}
