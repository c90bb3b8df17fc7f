export { createAdminHandler, storeProbe, type AdminServerOptions } from './admin-server.js';
export { openApiDocument } from './openapi.js';
export { createReviewsRoutes, type ReviewsRoutesOptions } from './reviews-routes.js';
export { identityAdminRoutes } from './identity-routes.js';
