import { expect, it } from "vitest";
import * as coordinator from "@havn/coordinator";
import * as engine from "@havn/engine";
import * as nodeAgent from "@havn/node-agent";
import * as sdk from "@havn/sdk";
import * as store from "@havn/store";
import * as testkit from "@havn/testkit";
import * as validator from "@havn/validator";

// Each package names its exports; this snapshot makes any widening of a public API show in review.
it.each(Object.entries({ store, engine, sdk, testkit, coordinator, nodeAgent, validator }))(
  "the public surface of %s",
  (_name, mod) => {
    expect(Object.keys(mod).sort()).toMatchSnapshot();
  },
);
