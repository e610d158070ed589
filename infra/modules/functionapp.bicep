// The Flex Consumption plan and the function app (Node.js 22, Linux). Every connection uses the
// user-assigned identity: no storage key or connection string is set anywhere.

@description('Region of the plan and the app; it must offer Flex Consumption.')
param location string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Globally unique name of the function app (its host name is <name>.azurewebsites.net).')
param appName string

@description('Resource ID of the user-assigned identity the app runs as.')
param identityId string

@description('Client ID of that identity.')
param identityClientId string

@description('Name of the storage account (AzureWebJobsStorage and the app data).')
param storageAccountName string

@description('Blob account URL for DICOMWEB_BLOB_ENDPOINT.')
param blobEndpoint string

@description('Table account URL for DICOMWEB_TABLE_ENDPOINT.')
param tableEndpoint string

@description('Queue account URL for DICOMWEB_QUEUE_ENDPOINT and the queue trigger (AzureWebJobsStorage__queueServiceUri).')
param queueEndpoint string

@description('Queue that starts bulk update operations (DICOMWEB_OPERATIONS_QUEUE).')
param operationsQueueName string

@description('Blob container of the instances (DICOMWEB_BLOB_CONTAINER).')
param instancesContainerName string

@description('Table of the index (DICOMWEB_TABLE).')
param indexTableName string

@description('URL of the blob container the plan deploys packages from.')
param deploymentContainerUrl string

@description('Connection string of the Application Insights component.')
param applicationInsightsConnectionString string

@description('Most instances the app scales out to (Flex Consumption: 40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Largest request body the Functions host accepts, in bytes (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT); see main.bicep.')
@minValue(2097152)
@maxValue(134217728)
param requestBodySizeLimit int

@description('What a STOW of an instance already stored gets (DICOMWEB_DUPLICATE_POLICY); see main.bicep.')
@allowed(['reject', 'accept-identical'])
param duplicatePolicy string

@description('Microsoft Entra tenant whose tokens the app accepts (DICOMWEB_AUTH_TENANT_ID).')
param entraTenantId string

@description('Audience the tokens must be issued for (DICOMWEB_AUTH_AUDIENCE).')
param entraAudience string

@description('Endpoint of the Event Grid topic for the DICOM events (DICOMWEB_EVENTS_EVENTGRID_ENDPOINT).')
param eventGridEndpoint string

@description('Tags of every resource.')
param tags object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        // The worker's memory does not grow with instance size (bodies stream), but the host holds
        // a UTF-16 copy of each Content-Length body: 4 requests per instance keep that within 1 GiB.
        instanceMemoryMB: 2048
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: 4
          }
        }
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      // Flex Consumption deprecates FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
      // WEBSITE_RUN_FROM_PACKAGE (functionAppConfig carries runtime and deployment instead) and the
      // site properties ftpsState, alwaysOn, use32BitWorkerProcess, linuxFxVersion (no FTP at all).
      appSettings: [
        // The Functions host's own storage, reached with the identity (no AccountKey).
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // The operations queue trigger's connection (functions/index.ts): the same account's queue service.
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: queueEndpoint
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // DefaultAzureCredential picks the user-assigned identity by this client ID.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'DICOMWEB_BLOB_ENDPOINT'
          value: blobEndpoint
        }
        {
          name: 'DICOMWEB_TABLE_ENDPOINT'
          value: tableEndpoint
        }
        // $bulkUpdate queues each operation's id here; the trigger above runs it.
        {
          name: 'DICOMWEB_QUEUE_ENDPOINT'
          value: queueEndpoint
        }
        {
          name: 'DICOMWEB_OPERATIONS_QUEUE'
          value: operationsQueueName
        }
        {
          name: 'DICOMWEB_BLOB_CONTAINER'
          value: instancesContainerName
        }
        {
          name: 'DICOMWEB_TABLE'
          value: indexTableName
        }
        {
          name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT'
          value: string(requestBodySizeLimit)
        }
        // 1 MiB under the host's limit, so a body over it gets the app's 413, not the host's 500.
        {
          name: 'DICOMWEB_MAX_REQUEST_BYTES'
          value: string(requestBodySizeLimit - 1048576)
        }
        {
          name: 'DICOMWEB_DUPLICATE_POLICY'
          value: duplicatePolicy
        }
        // The entry point refuses to load without storage and Entra settings: then the app must not start.
        {
          name: 'FUNCTIONS_NODE_BLOCK_ON_ENTRY_POINT_ERROR'
          value: 'true'
        }
        {
          name: 'DICOMWEB_AUTH_TENANT_ID'
          value: entraTenantId
        }
        {
          name: 'DICOMWEB_AUTH_AUDIENCE'
          value: entraAudience
        }
        // DICOM change events go to the topic, with the identity (docs/conformance.md "Events").
        {
          name: 'DICOMWEB_EVENTS_EVENTGRID_ENDPOINT'
          value: eventGridEndpoint
        }
        // The events' CloudEvents source: this app's resource ID, as the Azure service names its own resource.
        {
          name: 'DICOMWEB_EVENTS_SOURCE'
          value: resourceId('Microsoft.Web/sites', appName)
        }
      ]
    }
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
