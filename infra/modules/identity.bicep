// The user-assigned managed identity the function app runs as: the Functions host (AzureWebJobsStorage),
// the Flex Consumption deployment, Application Insights and the app's DefaultAzureCredential all use it.

@description('Region of the identity.')
param location string

@description('Name of the identity.')
param name string

@description('Tags of every resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
