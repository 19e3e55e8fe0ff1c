// The workloads, in the order they run. To add one: write a module next to this file that
// exports a Workload (see ../types.ts) and list it here.
import type { Workload } from '../types.js';
import { metadata } from './metadata.js';
import { sequential } from './sequential.js';
import { smallFiles } from './small-files.js';
import { tarExtract } from './tar.js';
import { layers } from './layers.js';
import { nativeMount } from './native-mount.js';
import { audit } from './audit.js';
import { caches } from './caches.js';
import { text } from './text.js';

export const workloads: Workload[] = [sequential, smallFiles, metadata, tarExtract, layers, nativeMount, audit, caches, text];
