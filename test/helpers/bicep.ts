/**
 * Offline reading of the Bicep templates in infra/: tree-sitter-bicep's WebAssembly grammar run by
 * web-tree-sitter (no Bicep CLI, no native build), plus small helpers over the syntax tree.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Language, Parser, type Node } from 'web-tree-sitter';

export type { Node } from 'web-tree-sitter';

export const infraDir = fileURLToPath(new URL('../../infra/', import.meta.url));

export interface BicepFile {
  /** Path relative to infra/, with forward slashes, e.g. `modules/storage.bicep`. */
  readonly name: string;
  readonly source: string;
  readonly root: Node;
}

let parser: Promise<Parser> | undefined;

function bicepParser(): Promise<Parser> {
  parser ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-bicep/tree-sitter-bicep.wasm');
    const instance = new Parser();
    instance.setLanguage(await Language.load(wasm));
    return instance;
  })();
  return parser;
}

export async function parseBicep(name: string, source: string): Promise<BicepFile> {
  const tree = (await bicepParser()).parse(source);
  if (!tree) throw new Error(`tree-sitter returned no tree for ${name}`);
  return { name, source, root: tree.rootNode };
}

/** Every file under infra/ whose name ends with `extension`, relative names sorted. */
export function infraFiles(extension: string, dir = infraDir): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) names.push(...infraFiles(extension, path));
    else if (entry.name.endsWith(extension)) names.push(relative(infraDir, path).split('\\').join('/'));
  }
  return names.sort();
}

/** Parses every .bicep file under infra/, keyed by its name relative to infra/. */
export async function loadInfra(): Promise<Map<string, BicepFile>> {
  const files = new Map<string, BicepFile>();
  for (const name of infraFiles('.bicep')) {
    files.set(name, await parseBicep(name, readFileSync(join(infraDir, name), 'utf8')));
  }
  return files;
}

/** All nodes of the tree, depth first. */
export function* walk(node: Node): Generator<Node> {
  yield node;
  for (const child of node.children) yield* walk(child);
}

/** ERROR and MISSING nodes, as `line:column type "text"` for readable failures. */
export function syntaxProblems(root: Node): string[] {
  return [...walk(root)]
    .filter((node) => node.isError || node.isMissing)
    .map(
      (node) =>
        `${node.startPosition.row + 1}:${node.startPosition.column + 1} ${node.isMissing ? 'MISSING' : 'ERROR'} ` +
        JSON.stringify(node.text.slice(0, 60)),
    );
}

/** The value of a string literal without interpolation, otherwise undefined. */
export function stringValue(node: Node | null | undefined): string | undefined {
  if (node?.type !== 'string') return undefined;
  let value = '';
  for (const part of node.namedChildren) {
    if (part.type === 'string_content') value += part.text;
    else if (part.type === 'escape_sequence') value += part.text.slice(1);
    else return undefined;
  }
  return value;
}

/** A literal's value: string, number or boolean; undefined for any other expression. */
export function literalValue(node: Node | null | undefined): string | number | boolean | undefined {
  if (!node) return undefined;
  if (node.type === 'number') return Number(node.text);
  if (node.type === 'boolean') return node.text === 'true';
  return stringValue(node);
}

/** Top-level declarations of one kind (`parameter_declaration`, `resource_declaration`, ...). */
export function declarations(root: Node, type: string): Node[] {
  return root.namedChildren.filter((node) => node.type === type);
}

/** The declared symbol of a declaration (its first identifier). */
export function declaredName(declaration: Node): string {
  const name = declaration.namedChildren.find((node) => node.type === 'identifier');
  if (!name) throw new Error(`no name in ${declaration.type} at line ${declaration.startPosition.row + 1}`);
  return name.text;
}

/** The expression after `=` of a param, var, output, resource or module declaration. */
export function assignedValue(declaration: Node): Node | undefined {
  const children = declaration.children;
  const equals = children.findIndex((node) => node.type === '=');
  return equals === -1 ? undefined : children.slice(equals + 1).find((node) => node.isNamed);
}

export interface Resource {
  readonly symbol: string;
  /** `Microsoft.Storage/storageAccounts` (for nested child resources, the short type as written). */
  readonly type: string;
  readonly apiVersion: string | undefined;
  readonly existing: boolean;
  /** The body: the object itself, or the object of a `[for ...]` loop or an `if (...)` condition. */
  readonly body: Node;
  /** For a loop: the identifier of the collection it iterates (`[for x in collection: ...]`). */
  readonly loopOver: string | undefined;
}

function bodyOf(value: Node): { body: Node; loopOver: string | undefined } | undefined {
  if (value.type === 'object') return { body: value, loopOver: undefined };
  if (value.type === 'for_statement') {
    const body = value.childForFieldName('body');
    const collection = value.namedChildren.filter((node) => node !== body && node.type !== 'comment')[1];
    return body ? { body, loopOver: collection?.text } : undefined;
  }
  if (value.type === 'if_statement') {
    const body = value.namedChildren.find((node) => node.type === 'object');
    return body ? { body, loopOver: undefined } : undefined;
  }
  if (value.type === 'array') {
    const inner = value.namedChildren.find((node) => node.type === 'for_statement');
    return inner ? bodyOf(inner) : undefined;
  }
  return undefined;
}

/** Top-level resource declarations with their type, API version and body. */
export function resources(root: Node): Resource[] {
  return declarations(root, 'resource_declaration').map((declaration) => {
    const typeString = stringValue(declaration.namedChildren.find((node) => node.type === 'string'));
    if (typeString === undefined)
      throw new Error(`resource without a literal type at ${declaration.startPosition.row + 1}`);
    const [type = '', apiVersion] = typeString.split('@');
    const value = assignedValue(declaration);
    const body = value && bodyOf(value);
    if (!body) throw new Error(`resource ${declaredName(declaration)} has no object body`);
    return {
      symbol: declaredName(declaration),
      type,
      apiVersion,
      existing: declaration.children.some((node) => node.type === 'existing'),
      ...body,
    };
  });
}

export function resourcesOfType(root: Node, type: string): Resource[] {
  return resources(root).filter((resource) => resource.type.toLowerCase() === type.toLowerCase());
}

/** The key of an object property: an identifier, a plain string's value, or else the key as written. */
function propertyKey(property: Node): string | undefined {
  const key = property.namedChildren[0];
  if (!key) return undefined;
  return key.type === 'identifier' ? key.text : (stringValue(key) ?? key.text);
}

/** The value of `key` in an object node (no deeper). */
export function property(object: Node | null | undefined, key: string): Node | undefined {
  if (object?.type !== 'object') return undefined;
  for (const child of object.namedChildren) {
    if (child.type === 'object_property' && propertyKey(child) === key) {
      return child.namedChildren.slice(1).find((node) => node.type !== 'comment');
    }
  }
  return undefined;
}

/** The value at a path of keys, e.g. `at(body, 'properties', 'siteConfig', 'minTlsVersion')`. */
export function at(object: Node | null | undefined, ...keys: string[]): Node | undefined {
  let node: Node | undefined = object ?? undefined;
  for (const key of keys) node = property(node, key);
  return node;
}

/** Every object_property in the subtree whose key is `key`, at any depth. */
export function propertiesNamed(root: Node, key: string): Node[] {
  return [...walk(root)].filter((node) => node.type === 'object_property' && propertyKey(node) === key);
}

/** The elements of an array node (comments left out). */
export function elements(array: Node | null | undefined): Node[] {
  if (array?.type !== 'array') return [];
  return array.namedChildren.filter((node) => node.type !== 'comment');
}

/** Names of the `param` declarations, and which of them have a default. */
export function parameters(root: Node): Map<string, { readonly hasDefault: boolean; readonly node: Node }> {
  return new Map(
    declarations(root, 'parameter_declaration').map((node) => [
      declaredName(node),
      { hasDefault: assignedValue(node) !== undefined, node },
    ]),
  );
}

/** The function app's siteConfig.appSettings in modules/functionapp.bicep: name → the value's text. */
export async function functionAppSettings(): Promise<Map<string, string>> {
  const name = 'modules/functionapp.bicep';
  const { root } = await parseBicep(name, readFileSync(join(infraDir, name), 'utf8'));
  const site = resourcesOfType(root, 'Microsoft.Web/sites').find((resource) => !resource.existing);
  const settings = new Map<string, string>();
  for (const item of elements(at(site?.body, 'properties', 'siteConfig', 'appSettings'))) {
    const key = stringValue(property(item, 'name'));
    const value = property(item, 'value');
    if (key !== undefined && value) settings.set(key, stringValue(value) ?? value.text);
  }
  return settings;
}
