export { startGateway, type Gateway, type StartOptions } from './gateway.js';
