// A SAML identity provider for tests: an RSA key and self-signed certificate made with
// openssl for this run, and Responses whose Assertion is signed with xml-crypto
// (enveloped signature, exclusive c14n, RSA-SHA256) — or deliberately not.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignedXml } from 'xml-crypto';

export interface SamlTestIdp {
  readonly issuer: string;
  readonly certPath: string;
  readonly cert: string;
  response(options: ResponseOptions): string;
}

export interface ResponseOptions {
  readonly acsUrl: string;
  readonly audience: string;
  readonly nameId: string;
  readonly groups?: readonly string[];
  readonly notBefore?: Date;
  readonly notOnOrAfter?: Date;
  readonly issueInstant?: Date;
  readonly sign?: boolean;
  readonly issuer?: string;
  /** The AuthnRequest ID this Response answers (absent: an unsolicited, IdP-initiated Response). */
  readonly inResponseTo?: string;
  /** Changes the XML after signing (tampering). */
  readonly tamper?: (xml: string) => string;
}

export function makeSamlIdp(issuer = 'https://idp.test/saml'): SamlTestIdp {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-saml-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'idp.key', '-out', 'idp.pem', '-days', '2', '-subj', '/CN=Gatehouse Test IdP'], { cwd: dir, stdio: 'pipe' });
  const key = readFileSync(join(dir, 'idp.key'), 'utf8');
  const cert = readFileSync(join(dir, 'idp.pem'), 'utf8');
  return {
    issuer,
    cert,
    certPath: join(dir, 'idp.pem'),
    response(o) {
      const now = o.issueInstant ?? new Date();
      const notBefore = o.notBefore ?? new Date(now.getTime() - 60_000);
      const notOnOrAfter = o.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000);
      const id = `_a${randomBytes(12).toString('hex')}`;
      const iss = o.issuer ?? issuer;
      const answers = o.inResponseTo === undefined ? '' : ` InResponseTo="${o.inResponseTo}"`;
      const attributes = (o.groups ?? []).map((g) => `<saml:AttributeValue>${g}</saml:AttributeValue>`).join('');
      const assertion = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${now.toISOString()}"><saml:Issuer>${iss}</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${o.nameId}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter.toISOString()}" Recipient="${o.acsUrl}"${answers}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="${notBefore.toISOString()}" NotOnOrAfter="${notOnOrAfter.toISOString()}"><saml:AudienceRestriction><saml:Audience>${o.audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="_s${id}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="groups">${attributes}</saml:Attribute></saml:AttributeStatement></saml:Assertion>`;
      let xml = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${randomBytes(12).toString('hex')}" Version="2.0" IssueInstant="${now.toISOString()}" Destination="${o.acsUrl}"${answers}><saml:Issuer>${iss}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${assertion}</samlp:Response>`;
      if (o.sign !== false) {
        const sig = new SignedXml({ privateKey: key, publicCert: cert, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#' });
        sig.addReference({
          xpath: "//*[local-name(.)='Assertion']",
          digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
          transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
        });
        sig.computeSignature(xml, { prefix: 'ds', location: { reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' } });
        xml = sig.getSignedXml();
      }
      if (o.tamper) xml = o.tamper(xml);
      return Buffer.from(xml).toString('base64');
    },
  };
}
