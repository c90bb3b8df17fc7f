export { createAdminHandler, type AdminServerOptions } from './admin-server.js';
export { openApiDocument } from './openapi.js';
export { identityAdminRoutes, type AdminRoute } from './identity-routes.js';
