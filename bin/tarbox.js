#!/usr/bin/env node
// Entry point; the CLI itself is compiled TypeScript (npx tsc -p . builds dist/).
import { main } from '../dist/cli/main.js';

// Exit explicitly: a library may leave a timer or socket open after the command is done (stdout
// and stderr are synchronous for files and pipes on Linux, so nothing written is lost).
process.exit(await main(process.argv));
