// A local stand-in for QuestDB's ILP/HTTP endpoint, run by the benchmark as a child process so that
// its CPU is not counted as flowlens's: it accepts POST /write, counts the rows (newlines) of each
// body and answers 204; GET /count answers the rows counted so far. Prints its port on stdout.
// Anything else gets 404. Listens on 127.0.0.1 only.
import { createServer } from 'node:http';

let rows = 0;
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url?.startsWith('/write')) {
    let n = 0;
    req.on('data', (chunk) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
    });
    req.on('end', () => {
      rows += n;
      res.writeHead(204).end();
    });
    return;
  }
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(String(rows));
    return;
  }
  req.resume();
  res.writeHead(404).end();
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
