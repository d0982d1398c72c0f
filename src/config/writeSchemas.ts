/**
 * Writes the JSON Schemas that ship in `config/` from the Effect schemas
 * they describe (`npm run schemas`); a test keeps them in step.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { JSONSchema, Schema } from "effect"
import { ResultRecord, RunRecord } from "../records/recordSchema.js"
import { wardenHome } from "../workspace/paths.js"
import { ConfigSchema } from "./schema.js"

export const schemaFiles = (): Record<string, unknown> => ({
  "warden.schema.json": { title: "Warden configuration", ...JSONSchema.make(Schema.encodedSchema(ConfigSchema)) },
  "run-record.schema.json": { title: "Warden run record (state/runs/<bead>.json), seed schema version 1 plus Warden's fields", ...JSONSchema.make(RunRecord) },
  "result-record.schema.json": { title: "Warden result record (state/results/<bead>.json), seed schema version 1 plus Warden's fields", ...JSONSchema.make(ResultRecord) }
})

export const schemaText = (doc: unknown): string => `${JSON.stringify(doc, null, 2)}\n`

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  for (const [name, doc] of Object.entries(schemaFiles())) {
    const file = path.join(wardenHome(), "config", name)
    fs.writeFileSync(file, schemaText(doc))
    process.stdout.write(`wrote ${file}\n`)
  }
}
