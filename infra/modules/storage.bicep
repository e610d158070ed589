// One StorageV2 account holds the DICOM instances (a blob container), their index (a table), the queue
// that starts bulk update operations (with its poison queue) and the Flex Consumption deployment
// packages (a second container). Shared keys are disabled: the app, the
// Functions host and deployments all authenticate with Microsoft Entra ID (the managed identity).

@description('Region of the account.')
param location string

@description('Globally unique account name: 3 to 24 lowercase letters and digits.')
@minLength(3)
@maxLength(24)
param name string

@description('Redundancy of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_LRS'

@description('Blob container of the DICOM instances (DICOMWEB_BLOB_CONTAINER).')
@minLength(3)
@maxLength(63)
param instancesContainerName string = 'dicomweb'

@description('Table of the index (DICOMWEB_TABLE).')
@minLength(3)
@maxLength(63)
param indexTableName string = 'dicomindex'

// At most 56 characters, so that its poison queue ('<name>-poison') is a valid queue name too.
@description('Queue that starts bulk update operations (DICOMWEB_OPERATIONS_QUEUE).')
@minLength(3)
@maxLength(56)
param operationsQueueName string = 'dicomweb-operations'

@description('Blob container that the Flex Consumption plan deploys app packages from.')
@minLength(3)
@maxLength(63)
param deploymentContainerName string = 'app-package'

@description('Tags of every resource.')
param tags object = {}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // The Flex Consumption app reaches the account over its public endpoint (no virtual network here).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource instancesContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: instancesContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource indexTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: indexTableName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

// The queue trigger reads the first; after maxDequeueCount failed tries (host.json) the Functions host
// moves a message to the second, which it would otherwise create itself.
resource operationsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: operationsQueueName
}

resource operationsPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${operationsQueueName}-poison'
}

output name string = account.name
output id string = account.id
// Account URLs without a trailing slash, the form DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT expect.
output blobEndpoint string = 'https://${account.name}.blob.${environment().suffixes.storage}'
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
output queueEndpoint string = 'https://${account.name}.queue.${environment().suffixes.storage}'
output instancesContainerName string = instancesContainer.name
output operationsQueueName string = operationsQueue.name
output indexTableName string = indexTable.name
output deploymentContainerUrl string = 'https://${account.name}.blob.${environment().suffixes.storage}/${deploymentContainer.name}'
