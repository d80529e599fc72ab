// upload.mjs uploads one file with tus-js-client, for ferry's interop suite
// (interop/upload_test.go). It prints one JSON object on stdout:
//
//   {"url": ..., "size": N, "offsetAtStart": N, "aborted": bool,
//    "requests": ["POST 201", "PATCH 204", ...], "interop": ["6", ...]}
//
// and exits 1 with the error on stderr when the upload fails.
//
// Usage:
//   node upload.mjs --file F --endpoint URL [--protocol tus-v1|ietf-draft-03|ietf-draft-05]
//                   [--parallel N] [--chunk-size BYTES] [--token T]
//                   [--upload-url URL] [--abort-at BYTES] [--data-during-creation]
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Upload } from 'tus-js-client'

const { values: opt } = parseArgs({
  options: {
    file: { type: 'string' },
    endpoint: { type: 'string' },
    protocol: { type: 'string', default: 'tus-v1' },
    parallel: { type: 'string', default: '1' },
    'chunk-size': { type: 'string' },
    token: { type: 'string' },
    'upload-url': { type: 'string' },
    'abort-at': { type: 'string' },
    'data-during-creation': { type: 'boolean', default: false },
  },
})
if (!opt.file || !opt.endpoint) {
  console.error('usage: node upload.mjs --file F --endpoint URL [options]')
  process.exit(2)
}

const size = fs.statSync(opt.file).size
const requests = []
const interop = new Set()
let offsetAtStart = null
let aborted = false

const options = {
  endpoint: opt.endpoint,
  protocol: opt.protocol,
  parallelUploads: Number(opt.parallel),
  metadata: { filename: path.basename(opt.file), filetype: 'application/octet-stream' },
  headers: opt.token ? { Authorization: `Bearer ${opt.token}` } : {},
  retryDelays: [0, 500, 1000, 2000],
  storeFingerprintForResuming: false,
  uploadDataDuringCreation: opt['data-during-creation'],
  onBeforeRequest(req) {
    const v = req.getHeader('Upload-Draft-Interop-Version')
    if (v) interop.add(v)
  },
  onAfterResponse(req, res) {
    requests.push(`${req.getMethod()} ${res.getStatus()}`)
    if (req.getMethod() === 'HEAD' && offsetAtStart === null) {
      offsetAtStart = Number(res.getHeader('Upload-Offset'))
    }
  },
  onProgress(sent) {
    if (opt['abort-at'] && !aborted && sent >= Number(opt['abort-at'])) {
      aborted = true
      upload.abort().then(() => report())
    }
  },
  onError(err) {
    console.error(`upload failed: ${err}`)
    console.log(JSON.stringify({ error: String(err), requests, interop: [...interop] }))
    process.exit(1)
  },
  onSuccess() {
    report()
  },
}
if (opt['chunk-size']) options.chunkSize = Number(opt['chunk-size'])
if (opt['upload-url']) options.uploadUrl = opt['upload-url']

// Give the upload time to reach the server's log, then print the result.
function report() {
  console.log(
    JSON.stringify({
      url: upload.url,
      size,
      offsetAtStart: offsetAtStart ?? 0,
      aborted,
      requests,
      interop: [...interop],
    }),
  )
  process.exit(0)
}

const upload = new Upload(fs.createReadStream(opt.file), options)
upload.start()
