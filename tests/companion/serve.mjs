// Starts the real Uppy Companion (standalone, configured by COMPANION_* variables) on
// 127.0.0.1 only: its own start script listens on every interface.
import * as companion from '@uppy/companion'
import standalone from '@uppy/companion/standalone'

const port = Number(process.env.COMPANION_PORT)
const { app } = standalone()
const server = app.listen(port, '127.0.0.1', () => {
  console.log(`companion listening on http://127.0.0.1:${port}`)
})
companion.socket(server)
