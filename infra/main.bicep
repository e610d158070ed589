// The DICOMweb server in one resource group: a storage account (instances, index, operations queue, deployment packages),
// a user-assigned identity with data-plane roles on it, Log Analytics with Application Insights, an
// Event Grid topic for the DICOM events, and a Flex Consumption function app running Node.js 22. See README.md, "Deploy to Azure".
targetScope = 'resourceGroup'

@description('Region of every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Prefix of every resource name: 2 to 12 lowercase letters, digits or hyphens, starting with a letter.')
@minLength(2)
@maxLength(12)
param namePrefix string = 'dicomweb'

@description('Microsoft Entra tenant whose access tokens the service accepts.')
param entraTenantId string = tenant().tenantId

@description('Audience of those tokens: the Application ID URI (api://...) or client ID of the API app registration.')
@minLength(1)
param entraAudience string

// Flex Consumption documents 40 as the lowest maximum (newer pages say 1) and 1000 as the highest.
@description('Most instances the Flex Consumption plan scales out to (40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

// 128 MiB: what the Functions host can take on a 2048 MB Flex instance. The host reads every body
// that has a Content-Length into a UTF-16 string before the Node worker sees a byte (the HTTP
// extension's trigger binding), so each request in flight costs twice its size in host memory:
// 4 concurrent requests (perInstanceConcurrency) x 2 x 128 MiB = 1 GiB, leaving room for the host
// and the worker. The app's own limit (DICOMWEB_MAX_REQUEST_BYTES) is 1 MiB lower so that a body
// over it gets the app's 413 rather than the host's 500. Larger instances need the upload-session
// path, not a bigger request.
@description('Largest request body the Functions host accepts, in bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT).')
@minValue(2097152)
@maxValue(134217728)
param requestBodySizeLimit int = 134217728

// reject: a re-sent instance already stored fails with 45070 (409), as on the Azure service.
// accept-identical: a byte-identical re-send answers success with WarningReason 0xB006 instead, so a
// PACS that retries a whole study after a partial failure completes (README "Duplicate policy").
@description('What a STOW of an instance already stored gets (DICOMWEB_DUPLICATE_POLICY).')
@allowed(['reject', 'accept-identical'])
param duplicatePolicy string = 'reject'

@description('Blob container of the DICOM instances.')
param instancesContainerName string = 'dicomweb'

@description('Table of the index.')
param indexTableName string = 'dicomindex'

@description('Queue that starts bulk update operations (at most 56 characters: its poison queue adds -poison).')
@minLength(3)
@maxLength(56)
param operationsQueueName string = 'dicomweb-operations'

@description('Redundancy of the storage account.')
param storageSkuName string = 'Standard_LRS'

@description('Tags of every resource.')
param tags object = {}

var token = uniqueString(resourceGroup().id, namePrefix)
var prefix = toLower(namePrefix)

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    location: location
    name: '${prefix}-id-${token}'
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: take('${replace(prefix, '-', '')}${token}', 24)
    skuName: storageSkuName
    instancesContainerName: instancesContainerName
    indexTableName: indexTableName
    operationsQueueName: operationsQueueName
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    logAnalyticsName: '${prefix}-log-${token}'
    applicationInsightsName: '${prefix}-appi-${token}'
    tags: tags
  }
}

module events 'modules/events.bicep' = {
  name: 'events'
  params: {
    location: location
    name: '${prefix}-events-${token}'
    tags: tags
  }
}

module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    eventGridTopicName: events.outputs.name
    principalId: identity.outputs.principalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    planName: '${prefix}-plan-${token}'
    appName: '${prefix}-${token}'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    queueEndpoint: storage.outputs.queueEndpoint
    operationsQueueName: storage.outputs.operationsQueueName
    instancesContainerName: storage.outputs.instancesContainerName
    indexTableName: storage.outputs.indexTableName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    maximumInstanceCount: maximumInstanceCount
    requestBodySizeLimit: requestBodySizeLimit
    duplicatePolicy: duplicatePolicy
    entraTenantId: entraTenantId
    entraAudience: entraAudience
    eventGridEndpoint: events.outputs.endpoint
    tags: tags
  }
  // The host must be able to reach its storage with the identity when it first starts.
  dependsOn: [
    rbac
  ]
}

@description('DICOMweb base URL (API version 2), the base_url of the Azure tutorials.')
output dicomwebBaseUrl string = 'https://${functionApp.outputs.defaultHostName}/v2'

@description('Name of the function app, for az functionapp deployment.')
output functionAppName string = functionApp.outputs.name

@description('Name of the storage account.')
output storageAccountName string = storage.outputs.name

@description('Resource ID of the Event Grid topic that receives the DICOM events; subscribe to it.')
output eventGridTopicId string = events.outputs.id

@description('Client ID of the identity the app runs as.')
output identityClientId string = identity.outputs.clientId
