/**
 * The DICOMweb API version a request came in on. It changes what the transactions do (STOW v1
 * fails an instance with an invalid indexed attribute, v2 stores it with a warning), so it
 * belongs to them; the route table (src/http/routes.ts) says which versions are served.
 */
export type ApiVersion = 'v1' | 'v2';
