// List Cloud Storage objects through airlock with an endpoint override.
const fs = require('fs');
const {OAuth2Client} = require('google-auth-library');
const {Storage} = require('@google-cloud/storage');

const domain = process.env.AIRLOCK_DOMAIN; // e.g. airlock.acme.example
const tokenFile = process.env.AIRLOCK_TOKEN_FILE;

// Reads the token `airlock login` (or the kubelet) keeps fresh, again a
// minute later.
const authClient = new OAuth2Client();
authClient.refreshHandler = async () => ({
  access_token: fs.readFileSync(tokenFile, 'utf8').trim(),
  expiry_date: Date.now() + 60 * 1000,
});

const storage = new Storage({
  projectId: 'acme-dev',
  apiEndpoint: `https://storage.${domain}`,
  // Without it the library sends no credentials to a custom endpoint.
  useAuthWithCustomEndpoint: true,
  authClient,
});

async function main() {
  const [files] = await storage.bucket('acme-dev-builds').getFiles({prefix: 'release/'});
  for (const f of files) console.log('object', f.name);
}

main().catch(err => {
  console.error(err.message);
  process.exit(1);
});
