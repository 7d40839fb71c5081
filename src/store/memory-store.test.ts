import { runStoreConformance } from './conformance.js';
import { createMemoryStore } from './memory-store.js';

runStoreConformance('memory', () => ({ store: createMemoryStore({ profile: 'positional', chunkBytes: 4096 }), cleanup: () => undefined }));
