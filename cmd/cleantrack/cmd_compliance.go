package main

func complianceCommands() []command {
	return nil
}
